/**
 * The health monitor against real upstreams that die and come back on the same port,
 * for every check kind.
 */
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { HealthCheck } from '../../src/config/types.js';
import { HealthMonitor } from '../../src/health/monitor.js';
import { HOST, close, connections, listen, sleep, track, waitFor } from '../unit/health/helpers.js';

interface Upstream {
  server: net.Server;
  /** Connections (tcp) or requests (http, ws) seen. */
  hits: () => number;
  stop: () => Promise<void>;
}

/** An upstream that answers `check` successfully, on `port` (0: any). */
async function upstream(check: HealthCheck, port = 0): Promise<{ port: number; up: Upstream }> {
  let hits = 0;
  let server: net.Server;
  let wss: WebSocketServer | null = null;
  if (check.kind === 'tcp' || check.kind === 'off') {
    server = net.createServer((socket) => {
      hits++;
      socket.resume();
    });
  } else {
    const httpServer = http.createServer((req, res) => {
      hits++;
      res.statusCode = req.url === (check.kind === 'http' ? check.path : '') ? 200 : 404;
      res.end();
    });
    server = httpServer;
    if (check.kind === 'ws') {
      wss = new WebSocketServer({ server: httpServer, path: check.path });
      wss.on('connection', (socket) => {
        hits++;
        socket.on('error', () => {});
      });
    }
  }
  track(server);
  const bound = await listen(server, port);
  return {
    port: bound,
    up: {
      server,
      hits: () => hits,
      stop: async () => {
        if (wss !== null) {
          for (const client of wss.clients) client.terminate();
          await new Promise<void>((resolve) => wss!.close(() => resolve()));
        }
        await close(server);
      },
    },
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const kinds: HealthCheck[] = [{ kind: 'tcp' }, { kind: 'http', path: '/health' }, { kind: 'ws', path: '/live' }];

describe.each(kinds)('check $kind', (check) => {
  it('goes down after fall failures when the upstream dies, and up after rise successes on restart', async () => {
    const intervalMs = 50;
    const { port, up: first } = await upstream(check);
    cleanups.push(() => first.stop());
    const changes: { up: boolean; reason: string; at: number }[] = [];
    const monitor = new HealthMonitor({
      check,
      intervalMs,
      timeoutMs: 1000,
      rise: 2,
      fall: 3,
      onChange: (name, up, reason) => {
        expect(name).toBe('u1');
        changes.push({ up, reason, at: performance.now() });
      },
    });
    cleanups.push(() => monitor.stop());
    monitor.setTargets([{ name: 'u1', host: HOST, port }]);
    monitor.start();
    await waitFor(() => first.hits() >= 3, 'healthy checks');
    expect(changes).toEqual([]);

    const killedAt = performance.now();
    await first.stop();
    await waitFor(() => changes.length === 1, 'the upstream to be marked down');
    expect(changes[0]).toMatchObject({ up: false, reason: 'connect ECONNREFUSED' });
    // Three failures span at least two intervals (less 5% spread), two only one: a
    // bound between them, with room for a check already in flight at the kill.
    expect(changes[0]!.at - killedAt).toBeGreaterThanOrEqual(1.5 * intervalMs);
    expect(monitor.isUp('u1')).toBe(false);

    const restartedAt = performance.now();
    const { up: second } = await upstream(check, port);
    cleanups.push(() => second.stop());
    await waitFor(() => changes.length === 2, 'the upstream to be marked up');
    expect(changes[1]!.up).toBe(true);
    // Two successes in a row are at least one interval (less the spread) apart.
    expect(changes[1]!.at - restartedAt).toBeGreaterThanOrEqual(0.9 * intervalMs);
    expect(second.hits()).toBeGreaterThanOrEqual(2);
    expect(monitor.isUp('u1')).toBe(true);

    // stop(): nothing left open towards the upstream, and no check after.
    monitor.stop();
    await waitFor(async () => (await connections(second.server)) === 0, 'check connections to close');
    const hits = second.hits();
    await sleep(5 * intervalMs);
    expect(second.hits()).toBe(hits);
    expect(changes).toHaveLength(2);
  });
});

describe('many targets', () => {
  it('spreads first checks over the interval instead of firing them at once', async () => {
    const arrivals: number[] = [];
    const server = track(
      net.createServer((socket) => {
        arrivals.push(performance.now());
        socket.resume();
      }),
    );
    const port = await listen(server);
    cleanups.push(() => close(server));
    const intervalMs = 2000;
    const monitor = new HealthMonitor({
      check: { kind: 'tcp' },
      intervalMs,
      timeoutMs: 1000,
      rise: 2,
      fall: 3,
      onChange: () => {},
    });
    cleanups.push(() => monitor.stop());
    const count = 200;
    monitor.setTargets(Array.from({ length: count }, (_, i) => ({ name: `u${i}`, host: HOST, port })));
    const startedAt = performance.now();
    monitor.start();
    await waitFor(() => arrivals.length >= count, 'every target to be checked once', 20_000);
    const first = arrivals.slice(0, count).map((t) => t - startedAt);
    // Uniform over 2 s, the span is ~2 s; all at once it would be a few ms. A loaded
    // machine can delay timers but hardly squeeze 200 random ones into 0.5 s.
    expect(Math.max(...first) - Math.min(...first)).toBeGreaterThan(500);
    // And no more than a handful land in any one 20 ms window.
    const buckets = new Map<number, number>();
    for (const t of first) buckets.set(Math.floor(t / 20), (buckets.get(Math.floor(t / 20)) ?? 0) + 1);
    expect(Math.max(...buckets.values())).toBeLessThan(count / 4);
    expect(monitor.snapshot().every((s) => s.up)).toBe(true);
  });
});
