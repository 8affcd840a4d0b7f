/**
 * Real servers for health tests: every helper binds 127.0.0.1 on port 0 and every
 * closer waits until the port is really released.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export const HOST = '127.0.0.1';

export function listen(server: net.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes a server and every connection it holds. */
export function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (server instanceof http.Server) server.closeAllConnections();
    server.close(() => resolve());
    for (const socket of tracked.get(server) ?? []) socket.destroy();
  });
}

const tracked = new WeakMap<net.Server, Set<net.Socket>>();

/** Remembers a server's sockets so close() can destroy them (net.Server has no closeAll). */
export function track<T extends net.Server>(server: T): T {
  const sockets = new Set<net.Socket>();
  tracked.set(server, sockets);
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return server;
}

export function connections(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** A port that was bound a moment ago and is now closed: connects are refused. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

/** Polls until `predicate` holds; fails with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A port whose SYNs go unanswered, for connect timeouts without relying on the
 * network: a child process listens with backlog 1 and then blocks its event loop so
 * it never accepts. Once the kernel's accept queue is full (we fill it), further
 * connects hang in SYN_SENT.
 */
export async function blackhole(): Promise<{ port: number; close: () => Promise<void> }> {
  const source = `
    const net = require('node:net');
    const server = net.createServer();
    server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(String(server.address().port) + '\\n', () => {
        // Blocked, the loop never accepts. Exit rather than start accepting should the
        // parent die without killing us.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
        process.exit(0);
      });
    });`;
  const child: ChildProcess = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(Number(text.trim()));
    });
    child.once('exit', (code) => reject(new Error(`blackhole child exited early (${code})`)));
  });
  // Fill the accept queue: these connects complete in the kernel, later ones do not.
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 8; i++) {
    const socket = net.connect({ host: HOST, port });
    socket.on('error', () => {});
    fillers.push(socket);
  }
  await sleep(200);
  return {
    port,
    close: async () => {
      for (const socket of fillers) socket.destroy();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
