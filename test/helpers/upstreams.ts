import net from 'node:net';
import { listenLoopback } from './listen.js';

/**
 * A real TCP upstream for tests: greets every connection with `NAME\n`, then echoes.
 * Tracks its open sockets so a test can tell who was closed.
 */
export interface TestUpstream {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly sockets: Set<net.Socket>;
  accepted: number;
  close(): Promise<void>;
}

export async function startUpstream(name: string, port = 0, host = '127.0.0.1'): Promise<TestUpstream> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    upstream.accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(`${name}\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as net.AddressInfo).port;
  const upstream: TestUpstream = {
    name,
    port: bound,
    address: `${host}:${bound}`,
    sockets,
    accepted: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return upstream;
}

export async function startUpstreams(names: readonly string[]): Promise<TestUpstream[]> {
  return Promise.all(names.map((n) => startUpstream(n)));
}

/** `name=127.0.0.1:port,...` for TETHER_UPSTREAMS. */
export function upstreamList(upstreams: readonly TestUpstream[]): string {
  return upstreams.map((u) => `${u.name}=${u.address}`).join(',');
}

/** A port that was free a moment ago (bound, then closed): connects to it are refused. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  const port = await listenLoopback(server, host);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
