import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closed, connectAndGreet, waitFor } from '../helpers/clients.js';
import { rssKiB, spawnTether, spawnedAddresses, startTether, type RunningTether, type TetherProcess } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';
import { listenLoopback } from '../helpers/listen.js';

let tether: RunningTether | null = null;
let proc: TetherProcess | null = null;
let servers: net.Server[] = [];
let upstreams: TestUpstream[] = [];

afterEach(async () => {
  await tether?.close();
  tether = null;
  proc?.kill('SIGKILL');
  proc = null;
  for (const s of servers) s.close();
  servers = [];
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  return listenLoopback(server);
}

describe('data plane', () => {
  it('passes a half-close through: the client sends and ends, the upstream answers after the FIN', async () => {
    // The upstream answers only once it has seen the client's FIN (like `nc -q`).
    const port = await listen(
      net.createServer({ allowHalfOpen: true }, (socket) => {
        let received = 0;
        socket.on('data', (c: Buffer) => (received += c.length));
        socket.on('end', () => socket.end(`got ${received} bytes`));
      }),
    );
    tether = await startTether({ TETHER_UPSTREAMS: `up=127.0.0.1:${port}`, TETHER_HEALTH: 'off' });
    const client = net.connect({ host: '127.0.0.1', port: tether.port, allowHalfOpen: true });
    let answer = '';
    client.on('data', (c: Buffer) => (answer += c.toString()));
    client.end(Buffer.alloc(100_000, 7));
    await new Promise<void>((resolve) => client.on('end', () => resolve()));
    expect(answer).toBe('got 100000 bytes');
    await closed(client);
  });

  it('closes a connection silent in both directions after TETHER_IDLE_TIMEOUT_MS, not one that talks', async () => {
    upstreams = await startUpstreams(['a']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_IDLE_TIMEOUT_MS: '300' });
    const silent = await connectAndGreet(tether.port);
    const chatty = await connectAndGreet(tether.port);
    const timer = setInterval(() => chatty.socket.write('x'), 100);
    const started = Date.now();
    await closed(silent.socket);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(chatty.socket.destroyed).toBe(false);
    clearInterval(timer);
    chatty.socket.destroy();
  });

  it('refuses connections beyond TETHER_MAX_CONNECTIONS at once', async () => {
    upstreams = await startUpstreams(['a']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_MAX_CONNECTIONS: '5' });
    const held = await Promise.all(Array.from({ length: 5 }, () => connectAndGreet(tether!.port)));
    for (const g of held) expect(g.upstream).toBe('a');
    const extra = await connectAndGreet(tether.port, '127.0.0.1', 2_000);
    expect(extra.upstream).toBeNull();
    expect(tether.tether.runtime()!.listener.counters.outcomes.refused).toBe(1);
    held[0]!.socket.destroy();
    await waitFor(() => tether!.tether.runtime()!.listener.active === 4, 2_000, 'a slot to free up');
    expect((await connectAndGreet(tether.port)).upstream).toBe('a');
    for (const g of held) g.socket.destroy();
  });

  it('relays bytes intact both ways and counts them', async () => {
    upstreams = await startUpstreams(['a']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const { socket } = await connectAndGreet(tether.port);
    const payload = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
    const chunks: Buffer[] = [];
    let got = 0;
    const done = new Promise<void>((resolve) =>
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got >= payload.length) resolve();
      }),
    );
    socket.write(payload);
    await done;
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    socket.destroy();
    const listener = tether.tether.runtime()!.listener;
    await waitFor(() => listener.active === 0, 2_000, 'the session to end');
    expect(listener.counters.fromClient).toBe(payload.length);
    expect(listener.counters.toClient).toBe(payload.length + 'a\n'.length);
  });

  it('applies backpressure: 200 MiB to a slow reader grows RSS by less than 64 MiB', async () => {
    const total = 200 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 1);
    const port = await listen(
      net.createServer((socket) => {
        let sent = 0;
        const pump = (): void => {
          while (sent < total) {
            sent += chunk.length;
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
          socket.end();
        };
        socket.on('error', () => {});
        pump();
      }),
    );
    proc = spawnTether({ TETHER_UPSTREAMS: `up=127.0.0.1:${port}`, TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_HEALTH: 'off', TETHER_ACCESS_LOG: 'off' });
    const { port: lbPort } = await spawnedAddresses(proc);
    const baseline = rssKiB(proc.pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(proc!.pid))), 50);
    // A slow reader: at most one chunk per millisecond of timer, about 30-60 MB/s.
    const client = net.connect({ host: '127.0.0.1', port: lbPort });
    let received = 0;
    client.on('data', (c: Buffer) => {
      received += c.length;
      client.pause();
      setTimeout(() => client.resume(), 2);
    });
    await new Promise<void>((resolve) => client.on('end', () => resolve()));
    clearInterval(sampler);
    client.destroy();
    expect(received).toBe(total);
    const growthMiB = (peak - baseline) / 1024;
    expect(growthMiB).toBeLessThan(64);
  }, 120_000);
});
