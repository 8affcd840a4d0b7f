import net from 'node:net';
import { once } from 'node:events';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { HandleSocket } from '../../src/net/handle-socket.js';
import { handleSocketsAvailable, useHandles } from '../../src/net/tcp-binding.js';
import { startTether } from '../helpers/tether.js';
import { Acceptor, type AcceptedSocket } from '../../src/proxy/acceptor.js';
import { copyRead, nextReadBuffer } from '../../src/proxy/relay.js';
import { seededRandom } from '../helpers/random.js';

/**
 * HandleSocket (src/net/handle-socket.ts) serves accepted connections on their TCP
 * handles, in place of net.Socket: these tests hold it to what http mode relies on
 * of a net.Socket, through real connections: reads only while resumed, `write()`
 * false exactly while bytes are queued and 'drain' after, bytes intact and in order
 * (single writes and corked writev), FINs both ways, the close once both are done,
 * errors.
 */

let acceptor: Acceptor | null = null;
const clients: net.Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await acceptor?.stop();
  acceptor = null;
});

interface Served {
  socket: HandleSocket;
  /** Everything read so far. */
  received: Buffer[];
}

/** An Acceptor serving handles; resolves with its port and a queue of the connections it serves. */
async function serve(): Promise<{ port: number; next: () => Promise<Served> }> {
  const waiting: ((s: Served) => void)[] = [];
  const ready: Served[] = [];
  const received = new Map<AcceptedSocket, Buffer[]>();
  acceptor = new Acceptor({
    configured: () => ({ host: '127.0.0.1', port: 0 }),
    logger: pino({ level: 'silent' }),
    onRead(nread, buffer) {
      received.get(this)?.push(copyRead(nread, buffer));
      return true;
    },
    onAccepted: (socket) => {
      if (!(socket instanceof HandleSocket)) throw new Error('accepted as a net.Socket');
      const served = { socket, received: [] as Buffer[] };
      received.set(socket, served.received);
      const w = waiting.shift();
      if (w) w(served);
      else ready.push(served);
    },
  });
  await acceptor.listen();
  return {
    port: acceptor.port,
    next: () => {
      const r = ready.shift();
      return r ? Promise.resolve(r) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

async function connect(port: number): Promise<net.Socket> {
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  clients.push(c);
  await once(c, 'connect');
  return c;
}

function collect(c: net.Socket): { bytes: () => Buffer; ended: Promise<unknown> } {
  const parts: Buffer[] = [];
  c.on('data', (d: Buffer) => parts.push(d));
  return { bytes: () => Buffer.concat(parts), ended: once(c, 'end') };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.skipIf(!handleSocketsAvailable)('HandleSocket', () => {
  it('reads only once resumed and not while paused, and knows both addresses', async () => {
    const { port, next } = await serve();
    const c = await connect(port);
    const s = await next();
    expect(s.socket.remoteAddress).toBe('127.0.0.1');
    expect(s.socket.remotePort).toBe(c.localPort);
    expect(s.socket.localPort).toBe(port);
    c.write('one');
    await new Promise((r) => setTimeout(r, 50));
    expect(s.received.length).toBe(0);
    s.socket.resume();
    await until(() => Buffer.concat(s.received).toString() === 'one');
    s.socket.pause();
    c.write('two');
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(s.received).toString()).toBe('one');
    s.socket.resume();
    await until(() => Buffer.concat(s.received).toString() === 'onetwo');
  });

  it('returns false from write exactly while bytes are queued, drains, and delivers 48 MiB intact in order, corked or not', async () => {
    const { port, next } = await serve();
    const c = await connect(port);
    const s = await next();
    const got = collect(c);
    c.pause();
    const random = seededRandom(0x51);
    const chunks: Buffer[] = [];
    for (let i = 0; i < 768; i++) {
      const b = Buffer.allocUnsafe(65536);
      for (let j = 0; j < b.length; j += 4) b.writeUInt32LE((random() * 0xffffffff) >>> 0, j);
      chunks.push(b);
    }
    let falses = 0;
    let drains = 0;
    s.socket.on('drain', () => drains++);
    let i = 0;
    const sent = new Promise<void>((resolve) => {
      const pump = (): void => {
        while (i < chunks.length) {
          let ok: boolean;
          if (i % 3 === 0 && i + 1 < chunks.length) {
            s.socket.cork();
            s.socket.write(chunks[i++]!);
            s.socket.write(chunks[i++]!);
            s.socket.uncork();
            ok = !s.socket.writableNeedDrain;
          } else ok = s.socket.write(chunks[i++]!);
          if (!ok) {
            falses++;
            s.socket.once('drain', pump);
            return;
          }
        }
        resolve();
      };
      pump();
    });
    // Nothing is read yet: the kernel's buffers fill and a write must be queued.
    await new Promise((r) => setTimeout(r, 100));
    expect(falses).toBe(1);
    c.resume();
    await sent;
    s.socket.end();
    await got.ended;
    expect(drains).toBe(falses);
    expect(falses).toBeGreaterThan(1);
    expect(got.bytes().equals(Buffer.concat(chunks))).toBe(true);
  });

  it("passes FINs both ways and closes once both sides are done, whichever ends first", async () => {
    const { port, next } = await serve();
    // Ours first.
    const c1 = await connect(port);
    const s1 = await next();
    const got1 = collect(c1);
    s1.socket.resume();
    let closed1 = false;
    s1.socket.on('close', () => (closed1 = true));
    s1.socket.end(Buffer.from('bye'));
    expect(s1.socket.writable).toBe(false);
    await got1.ended;
    expect(got1.bytes().toString()).toBe('bye');
    await new Promise((r) => setTimeout(r, 50));
    expect(closed1).toBe(false);
    c1.write('late');
    c1.end();
    await until(() => closed1);
    expect(Buffer.concat(s1.received).toString()).toBe('late');
    // Theirs first.
    const c2 = await connect(port);
    const s2 = await next();
    let ended2 = false;
    let closed2 = false;
    s2.socket.on('end', () => (ended2 = true));
    s2.socket.on('close', () => (closed2 = true));
    s2.socket.resume();
    c2.end('x');
    await until(() => ended2);
    expect(closed2).toBe(false);
    expect(s2.socket.write(Buffer.from('after your FIN'))).toBe(true);
    const got2 = collect(c2);
    s2.socket.destroySoon();
    await got2.ended;
    await until(() => closed2);
    expect(got2.bytes().toString()).toBe('after your FIN');
  });

  it("reports a reset as 'error' then 'close', and destroy closes at once", async () => {
    const { port, next } = await serve();
    const c = await connect(port);
    const s = await next();
    const events: string[] = [];
    s.socket.on('error', (err: NodeJS.ErrnoException) => events.push(`error ${err.code}`));
    s.socket.on('close', (hadError: boolean) => events.push(`close ${hadError}`));
    s.socket.resume();
    c.resetAndDestroy();
    await until(() => events.length === 2);
    expect(events).toEqual(['error ECONNRESET', 'close true']);
    const c2 = await connect(port);
    const s2 = await next();
    const got = collect(c2);
    let closed = false;
    s2.socket.on('close', () => (closed = true));
    s2.socket.destroy();
    expect(s2.socket.destroyed).toBe(true);
    expect(s2.socket.write(Buffer.from('x'))).toBe(false);
    await Promise.race([got.ended, once(c2, 'close')]);
    await until(() => closed);
  });

  it.each(['tcp', 'http'])("says in its 'listening' line that a %s listener serves connections on TCP handles, or on net.Socket when told", async (mode) => {
    for (const handles of [true, false]) {
      useHandles(handles);
      const logs: Record<string, unknown>[] = [];
      const t = await startTether({ TETHER_MODE: mode, TETHER_UPSTREAMS: 'a=127.0.0.1:1', TETHER_HEALTH: 'off' }, logs);
      try {
        const line = logs.find((l) => l.msg === 'listening');
        expect(line?.sockets).toBe(handles ? 'tcp handles' : 'net.Socket');
      } finally {
        useHandles(true);
        await t.close();
      }
    }
  });

  it.each(['tcp', 'http'])('relays over IPv6 in %s mode: an IPv6 listener, an IPv6 upstream connected on a handle', async (mode) => {
    const upstream = net.createServer((c) => {
      c.on('data', (d: Buffer) => {
        if (mode === 'tcp') c.write(d);
        else c.write(`HTTP/1.1 200 OK\r\nContent-Length: ${c.remoteAddress!.length}\r\n\r\n${c.remoteAddress}`);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '::1', resolve));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    const logs: Record<string, unknown>[] = [];
    const t = await startTether(
      { TETHER_MODE: mode, TETHER_LISTEN: '[::1]:0', TETHER_UPSTREAMS: `six=[::1]:${upstreamPort}`, TETHER_HEALTH: 'off' },
      logs,
    );
    try {
      expect(logs.find((l) => l.msg === 'listening')?.sockets).toBe('tcp handles');
      const c = net.connect({ host: '::1', port: t.port });
      clients.push(c);
      await once(c, 'connect');
      const got = collect(c);
      if (mode === 'tcp') {
        c.end('over six');
        await got.ended;
        expect(got.bytes().toString()).toBe('over six');
      } else {
        c.write('GET / HTTP/1.1\r\nHost: six\r\nConnection: close\r\n\r\n');
        await got.ended;
        // The upstream saw tether's IPv6 connection.
        expect(got.bytes().toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n::1$/);
      }
    } finally {
      await t.close();
      upstream.close();
    }
  });

  it('connects: bytes written and the FIN asked for before the connection is up follow it, in order', async () => {
    const got: Buffer[] = [];
    let ended = false;
    const server = net.createServer({ allowHalfOpen: true }, (c) => {
      c.on('data', (d: Buffer) => got.push(d));
      c.on('end', () => {
        ended = true;
        c.end('bye');
      });
    });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
    try {
      const received: Buffer[] = [];
      const socket = HandleSocket.connect('127.0.0.1', port, 4, (nread, buffer) => received.push(copyRead(nread, buffer)) > 0, nextReadBuffer, true);
      const events: string[] = [];
      socket.on('connect', () => events.push('connect'));
      socket.on('end', () => events.push('end'));
      socket.on('close', () => events.push('close'));
      expect(socket.connecting).toBe(true);
      socket.write(Buffer.from('one,'));
      socket.write(Buffer.from('two'));
      socket.end();
      expect(socket.writableEnded).toBe(true);
      await until(() => events.includes('close'));
      expect(events).toEqual(['connect', 'end', 'close']);
      expect(Buffer.concat(got).toString()).toBe('one,two');
      expect(ended).toBe(true);
      expect(Buffer.concat(received).toString()).toBe('bye');
    } finally {
      server.close();
    }
  });

  it("connects: a refused connection is 'error' (ECONNREFUSED) then 'close', never 'connect'", async () => {
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)));
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const socket = HandleSocket.connect('127.0.0.1', port, 4, () => true, nextReadBuffer, true);
    const events: string[] = [];
    socket.on('connect', () => events.push('connect'));
    socket.on('error', (err: NodeJS.ErrnoException) => events.push(`error ${err.code}`));
    socket.on('close', (hadError: boolean) => events.push(`close ${hadError}`));
    await until(() => events.length === 2);
    expect(events).toEqual(['error ECONNREFUSED', 'close true']);
  });
});
