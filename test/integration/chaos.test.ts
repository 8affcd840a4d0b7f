import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/clients.js';
import { fuzzSeed } from '../helpers/fuzz.js';
import { openFds } from '../helpers/load.js';
import { seededRandom } from '../helpers/random.js';
import { metricSum, spawnTether, spawnedAddresses, type TetherProcess } from '../helpers/tether.js';

/**
 * Issue 8, hostile peers at the connection level (tcp mode): clients and upstreams
 * that reset, half-close, stall or vanish at random moments, thousands of times.
 * Whatever they do, tether must end every session, hold no socket afterwards, count
 * each connection once, and keep serving.
 */

let proc: TetherProcess | null = null;
const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();

afterEach(async () => {
  proc?.kill('SIGKILL');
  proc = null;
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

const UPSTREAM_MOODS = ['echo', 'close-at-once', 'reset-at-once', 'reset-after-bytes', 'end-after-bytes', 'silent', 'slow-echo'] as const;
const CLIENT_MOODS = ['echo', 'reset-at-once', 'reset-after-send', 'end-after-send', 'send-and-vanish', 'no-read', 'trickle'] as const;
/**
 * Clients that may reset before tether has accepted them: the kernel hands such a
 * connection over without a peer address, or not at all, so tether can neither route
 * nor count it. Every other client is a connection tether must count.
 */
const EARLY_RESETS: ReadonlySet<string> = new Set(['reset-at-once', 'reset-after-send', 'send-and-vanish']);

/** An upstream whose every connection picks a mood from a seeded generator. */
async function moodyUpstream(seed: number): Promise<{ port: number; open: () => number }> {
  const random = seededRandom(seed);
  let open = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    open++;
    sockets.add(socket);
    socket.on('close', () => (open--, sockets.delete(socket)));
    socket.on('error', () => {});
    const mood = UPSTREAM_MOODS[Math.floor(random() * UPSTREAM_MOODS.length)]!;
    switch (mood) {
      case 'close-at-once':
        socket.end();
        socket.resume();
        return;
      case 'reset-at-once':
        socket.resetAndDestroy();
        return;
      case 'silent':
        // Reads, never writes (the idle timeout's business); closes when told to, or
        // it would sit in CLOSE_WAIT forever after tether has gone.
        socket.resume();
        socket.on('end', () => socket.end());
        return;
      case 'slow-echo':
        socket.on('data', (c: Buffer) => setTimeout(() => !socket.destroyed && socket.write(c), 20));
        socket.on('end', () => setTimeout(() => socket.end(), 30));
        return;
      default: {
        let seen = 0;
        const limit = 1 + Math.floor(random() * 4096);
        socket.on('data', (c: Buffer) => {
          seen += c.length;
          if (mood === 'reset-after-bytes' && seen >= limit) return void socket.resetAndDestroy();
          if (mood === 'end-after-bytes' && seen >= limit) return void socket.end(c);
          socket.write(c);
        });
        socket.on('end', () => socket.end());
      }
    }
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => resolve()));
  return { port: (server.address() as net.AddressInfo).port, open: () => open };
}

/**
 * One client with a mood. Resolves with null once its socket has closed, or with a
 * description if it was still open after 15 s (tether must have ended it long before:
 * the idle timeout is 1 s).
 */
function moodyClient(port: number, i: number, random: () => number, moods: Map<string, number>): Promise<string | null> {
  const mood = CLIENT_MOODS[Math.floor(random() * CLIENT_MOODS.length)]!;
  moods.set(mood, (moods.get(mood) ?? 0) + 1);
  const payload = Buffer.alloc(1 + Math.floor(random() * 32 * 1024), i & 0xff);
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.${1 + (i % 200)}.${2 + Math.floor(i / 200)}` });
  sockets.add(socket);
  socket.on('error', () => {});
  const done = new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => {
      resolve(`client ${i} (${mood}, ${payload.length} bytes) still open after 15 s`);
      socket.destroy();
    }, 15_000);
    socket.once('close', () => {
      clearTimeout(timer);
      sockets.delete(socket);
      resolve(null);
    });
  });
  socket.once('connect', () => {
    switch (mood) {
      case 'reset-at-once':
        socket.resetAndDestroy();
        break;
      case 'reset-after-send':
        socket.write(payload, () => socket.resetAndDestroy());
        break;
      case 'end-after-send':
        socket.end(payload);
        socket.resume();
        break;
      case 'send-and-vanish':
        socket.write(payload);
        setTimeout(() => socket.destroy(), Math.floor(random() * 50));
        break;
      case 'no-read':
        // Sends, then reads nothing for 2 s (a paused socket would not even see its
        // close; the reads after that only let this side notice).
        socket.pause();
        socket.write(payload);
        setTimeout(() => socket.resume(), 2_000);
        break;
      case 'trickle': {
        let k = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || k >= 10) return void (clearInterval(timer), socket.end());
          socket.write(payload.subarray(k * 100, k * 100 + 100));
          k++;
        }, 10);
        socket.resume();
        break;
      }
      default: {
        let got = 0;
        socket.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= payload.length) socket.end();
        });
        socket.write(payload);
      }
    }
  });
  return done;
}

/** Send "ping", return what came back first ('' if closed or nothing within 2 s). */
function pingOnce(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port, localAddress });
    const timer = setTimeout(() => c.destroy(), 2_000);
    c.on('error', () => {});
    c.once('data', (d: Buffer) => {
      clearTimeout(timer);
      c.destroy();
      resolve(d.toString());
    });
    c.once('close', () => (clearTimeout(timer), resolve('')));
    c.write('ping');
  });
}

describe('chaos: clients and upstreams misbehaving at random', () => {
  it('3,000 connections: every session ends, no socket is left behind, each is counted once, and tether still serves', async () => {
    const seed = fuzzSeed(0xc4a05);
    const ups = await Promise.all([1, 2, 3].map((k) => moodyUpstream(seed + k)));
    proc = spawnTether({
      TETHER_UPSTREAMS: ups.map((u, k) => `u${k}=127.0.0.1:${u.port}`).join(','),
      TETHER_LISTEN: '127.0.0.1:0',
      TETHER_ADMIN: '127.0.0.1:0',
      TETHER_HEALTH: 'off',
      TETHER_IDLE_TIMEOUT_MS: '1000',
      TETHER_ACCESS_LOG: 'off',
    });
    const { port, admin } = await spawnedAddresses(proc);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const idleFds = openFds(proc.pid);

    const random = seededRandom(seed);
    const total = 3_000;
    let next = 0;
    const stuck: string[] = [];
    const moods = new Map<string, number>();
    const worker = async (): Promise<void> => {
      while (next < total) {
        const problem = await moodyClient(port, next++, random, moods);
        if (problem !== null) stuck.push(problem);
      }
    };
    await Promise.all(Array.from({ length: 150 }, worker));
    expect(stuck).toEqual([]);

    const metric = (name: string): Promise<number> => metricSum(admin, name);
    // Every session ends; each connection tether saw is counted once (none twice).
    const mustCount = [...moods].filter(([m]) => !EARLY_RESETS.has(m)).reduce((n, [, k]) => n + k, 0);
    await waitFor(async () => (await metric('tether_connections_active')) === 0, 20_000, 'every session to end');
    const counted = await metric('tether_connections_total');
    expect(counted).toBeGreaterThanOrEqual(mustCount);
    expect(counted).toBeLessThanOrEqual(total);
    await waitFor(() => ups.every((u) => u.open() === 0), 10_000, 'no upstream connection left open');
    // (+1: the kept-alive admin connection of the metric calls)
    await waitFor(() => openFds(proc!.pid) <= idleFds + 1, 10_000, `tether's descriptors back to ${idleFds}`);
    expect(proc.child.exitCode).toBeNull();
    // Still serving: a normal client gets its echo (the upstreams' moods are random,
    // so it may take a few tries to meet one that echoes).
    let served = false;
    for (let k = 0; k < 50 && !served; k++) served = (await pingOnce(port, `127.0.250.${2 + k}`)) === 'ping';
    expect(served).toBe(true);
    expect(proc.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(proc.stderr).toBe('');
  }, 120_000);
});
