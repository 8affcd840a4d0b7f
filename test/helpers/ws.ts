import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

/** A real WebSocket upstream: answers every message with `NAME:message`. */
export interface WsUpstream {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  /** Connections open now. */
  readonly open: () => number;
  close(): Promise<void>;
}

export async function startWsUpstream(name: string): Promise<WsUpstream> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.on('connection', (socket) => {
    socket.on('error', () => {});
    socket.on('message', (data) => socket.send(`${name}:${String(data)}`));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    open: () => server.clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  };
}

/**
 * A WebSocket client through the balancer from one source address (its key in tcp
 * mode). It learns its upstream from the first echo, and reconnects whenever its
 * connection is closed, recording each upstream it reached and when it was closed.
 */
export class StickyClient {
  readonly localAddress: string;
  /** Upstreams reached, one entry per connection, in order. */
  readonly upstreams: string[] = [];
  /** performance.now() of each close of an established connection. */
  readonly closes: number[] = [];
  #socket: WebSocket | null = null;
  #stopped = false;
  readonly #url: string;

  /** `path` carries the key in http mode (e.g. `/?id=K`); tcp mode keys on localAddress. */
  constructor(port: number, localAddress: string, path = '/') {
    this.localAddress = localAddress;
    this.#url = `ws://127.0.0.1:${port}${path}`;
  }

  get upstream(): string | undefined {
    return this.upstreams.at(-1);
  }

  get connected(): boolean {
    return this.#socket?.readyState === WebSocket.OPEN && this.upstreams.length > 0;
  }

  /** Resolves once connected and its upstream known; rejects after `timeoutMs`. */
  connect(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.localAddress}: no echo within ${timeoutMs} ms`)), timeoutMs);
      this.#open(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Send one message and wait for its echo: `UPSTREAM:text`. */
  echo(text: string, timeoutMs = 10_000): Promise<string> {
    const socket = this.#socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo')), timeoutMs);
      const onMessage = (data: WebSocket.RawData): void => {
        if (!String(data).endsWith(`:${text}`)) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(String(data));
      };
      socket.on('message', onMessage);
      socket.send(text);
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#socket?.terminate();
  }

  #open(onReady?: () => void): void {
    if (this.#stopped) return;
    const socket = new WebSocket(this.#url, { localAddress: this.localAddress });
    this.#socket = socket;
    let established = false;
    socket.on('error', () => {});
    socket.on('open', () => socket.send('hello'));
    // The first message names the upstream: the echo of "hello" (`NAME:hello`), or
    // the greeting of an upstream that greets (`NAME`).
    socket.once('message', (data) => {
      established = true;
      this.upstreams.push(String(data).split(':')[0]!);
      onReady?.();
    });
    socket.on('close', () => {
      if (established) this.closes.push(performance.now());
      if (this.#stopped) return;
      // Reconnect as a real client would (a refused attempt retries too).
      setTimeout(() => this.#open(established ? undefined : onReady), 50);
    });
  }
}
