import http from 'node:http';
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheck } from '../../../src/config/types.js';
import { HealthMonitor, type HealthMonitorOptions } from '../../../src/health/monitor.js';
import { HOST, close, connections, listen, sleep, track, waitFor } from './helpers.js';

interface Change {
  name: string;
  up: boolean;
  reason: string;
  at: number;
}

const monitors: HealthMonitor[] = [];
const servers: net.Server[] = [];

afterEach(async () => {
  for (const m of monitors.splice(0)) m.stop();
  await Promise.all(servers.splice(0).map(close));
});

function monitor(check: HealthCheck, options: Partial<HealthMonitorOptions> = {}) {
  const changes: Change[] = [];
  const m = new HealthMonitor({
    check,
    intervalMs: 50,
    timeoutMs: 1000,
    rise: 2,
    fall: 3,
    onChange: (name, up, reason) => changes.push({ name, up, reason, at: Date.now() }),
    ...options,
  });
  monitors.push(m);
  return { m, changes };
}

/** An HTTP server whose answer can be switched, counting requests by status served. */
async function switchable() {
  const state = { status: 200, served: new Map<number, number>(), total: 0 };
  const server = track(
    http.createServer((_req, res) => {
      state.total++;
      state.served.set(state.status, (state.served.get(state.status) ?? 0) + 1);
      res.statusCode = state.status;
      res.end();
    }),
  );
  servers.push(server);
  const port = await listen(server);
  return { server, port, state, count: (status: number) => state.served.get(status) ?? 0 };
}

/** A TCP server counting connections, current and most at once. */
async function counting(onSocket: (socket: net.Socket) => void = (s) => s.resume()) {
  const stats = { accepted: 0, open: 0, maxOpen: 0 };
  const server = track(
    net.createServer((socket) => {
      stats.accepted++;
      stats.open++;
      // Measured a little after the accept: the previous check's close can reach this
      // server in the same loop turn as the next check's connect, which is no overlap.
      // Two checks truly in flight overlap for a whole timeout.
      setTimeout(() => {
        if (!socket.destroyed) stats.maxOpen = Math.max(stats.maxOpen, stats.open);
      }, 10);
      socket.once('close', () => stats.open--);
      onSocket(socket);
    }),
  );
  servers.push(server);
  const port = await listen(server);
  return { server, port, stats };
}

describe('options', () => {
  it.each(['intervalMs', 'timeoutMs', 'rise', 'fall'] as const)('rejects a bad %s, naming it', (name) => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => monitor({ kind: 'tcp' }, { [name]: bad })).toThrow(`options.${name} must be a positive integer`);
    }
  });
});

describe('state without checks', () => {
  it('new targets start up, unknown names are not up', () => {
    const { m, changes } = monitor({ kind: 'tcp' });
    m.setTargets([{ name: 'a', host: HOST, port: 1 }]);
    expect(m.isUp('a')).toBe(true);
    expect(m.isUp('nope')).toBe(false);
    expect(m.snapshot()).toEqual([{ name: 'a', up: true, lastReason: 'unchecked', lastCheckAt: null }]);
    expect(changes).toEqual([]);
  });

  it('reportFailure x fall marks down once; fewer do not', () => {
    const { m, changes } = monitor({ kind: 'tcp' }, { fall: 3 });
    m.setTargets([{ name: 'a', host: HOST, port: 1 }]);
    m.reportFailure('a', 'connect ECONNREFUSED');
    m.reportFailure('a', 'connect ECONNREFUSED');
    expect(m.isUp('a')).toBe(true);
    m.reportFailure('a', 'connect ECONNREFUSED');
    expect(m.isUp('a')).toBe(false);
    m.reportFailure('a', 'connect ECONNREFUSED');
    expect(changes.map(({ name, up, reason }) => ({ name, up, reason }))).toEqual([
      { name: 'a', up: false, reason: 'passive: connect ECONNREFUSED' },
    ]);
    const [snap] = m.snapshot();
    expect(snap).toMatchObject({ name: 'a', up: false, lastReason: 'passive: connect ECONNREFUSED' });
    expect(typeof snap!.lastCheckAt).toBe('number');
    m.reportFailure('unknown', 'ignored');
  });

  it('reportSuccess resets the failure streak', () => {
    const { m } = monitor({ kind: 'tcp' }, { fall: 3 });
    m.setTargets([{ name: 'a', host: HOST, port: 1 }]);
    m.reportFailure('a', 'x');
    m.reportFailure('a', 'x');
    m.reportSuccess('a');
    m.reportFailure('a', 'x');
    m.reportFailure('a', 'x');
    expect(m.isUp('a')).toBe(true);
  });

  it('with active checks, reportSuccess does not raise a down target', () => {
    const { m, changes } = monitor({ kind: 'tcp' }, { fall: 1 });
    m.setTargets([{ name: 'a', host: HOST, port: 1 }]);
    m.reportFailure('a', 'x');
    for (let i = 0; i < 5; i++) m.reportSuccess('a');
    expect(m.isUp('a')).toBe(false);
    expect(changes).toHaveLength(1);
  });

  it('removed targets are forgotten; re-added ones start up again', () => {
    const { m } = monitor({ kind: 'tcp' }, { fall: 1 });
    m.setTargets([{ name: 'a', host: HOST, port: 1 }, { name: 'b', host: HOST, port: 2 }]);
    m.reportFailure('a', 'x');
    m.setTargets([{ name: 'b', host: HOST, port: 2 }]);
    expect(m.snapshot().map((s) => s.name)).toEqual(['b']);
    expect(m.isUp('a')).toBe(false);
    m.setTargets([{ name: 'a', host: HOST, port: 1 }, { name: 'b', host: HOST, port: 2 }]);
    expect(m.isUp('a')).toBe(true);
  });

  it('a throwing onChange is logged and does not stop the monitor', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const m = new HealthMonitor({
      check: { kind: 'tcp' },
      intervalMs: 50,
      timeoutMs: 100,
      rise: 1,
      fall: 1,
      logger,
      onChange: () => {
        throw new Error('listener bug');
      },
    });
    m.setTargets([{ name: 'a', host: HOST, port: 1 }]);
    m.reportFailure('a', 'connect ECONNREFUSED');
    expect(m.isUp('a')).toBe(false);
    expect(lines.find((l) => l.msg === 'upstream down')).toMatchObject({ upstream: 'a', reason: 'passive: connect ECONNREFUSED' });
    expect(lines.find((l) => l.msg === 'health onChange listener threw')).toMatchObject({ upstream: 'a' });
  });
});

describe('check kind off', () => {
  it('opens no connection, and passive failures hold a target down for one interval', async () => {
    const { port, stats } = await counting();
    const { m, changes } = monitor({ kind: 'off' }, { intervalMs: 200, fall: 2 });
    m.setTargets([{ name: 'a', host: HOST, port }]);
    m.start();
    m.reportFailure('a', 'connect ECONNREFUSED');
    m.reportFailure('a', 'connect ECONNREFUSED');
    const downAt = Date.now();
    expect(m.isUp('a')).toBe(false);
    await waitFor(() => m.isUp('a'), 'the hold-down to end');
    expect(Date.now() - downAt).toBeGreaterThanOrEqual(190);
    expect(changes.map((c) => [c.up, c.reason])).toEqual([
      [false, 'passive: connect ECONNREFUSED'],
      [true, 'hold-down of 200ms over'],
    ]);
    // Probation: one more failure is enough, as with nginx after fail_timeout.
    m.reportFailure('a', 'connect ECONNREFUSED');
    expect(m.isUp('a')).toBe(false);
    // With off, a successful connect ends the hold-down early.
    m.reportSuccess('a');
    expect(m.isUp('a')).toBe(true);
    // And clears the probation: fall failures again.
    m.reportFailure('a', 'x');
    expect(m.isUp('a')).toBe(true);
    expect(stats.accepted).toBe(0);
  });

  it('stop() cancels a hold-down; start() resumes it', async () => {
    const { m } = monitor({ kind: 'off' }, { intervalMs: 100, fall: 1 });
    m.setTargets([{ name: 'a', host: HOST, port: 1 }]);
    m.start();
    m.reportFailure('a', 'x');
    m.stop();
    await sleep(300);
    expect(m.isUp('a')).toBe(false);
    m.start();
    await waitFor(() => m.isUp('a'), 'the resumed hold-down to end');
  });
});

describe('active checks', () => {
  it('counts fall failures to go down and rise successes to come back', async () => {
    const { port, state, count } = await switchable();
    const seenAtChange: number[] = [];
    const { m, changes } = monitor(
      { kind: 'http', path: '/health' },
      { onChange: (_n, up) => seenAtChange.push(up ? count(200) : count(500)) },
    );
    m.setTargets([{ name: 'a', host: HOST, port }]);
    m.start();
    await waitFor(() => state.total >= 3, 'a few healthy checks');
    expect(changes).toEqual([]);
    expect(seenAtChange).toEqual([]);

    state.status = 500;
    await waitFor(() => !m.isUp('a'), 'the target to go down');
    // The third 500 is what sent it down: not the first or second.
    expect(seenAtChange).toEqual([3]);
    expect(m.snapshot()[0]).toMatchObject({ up: false, lastReason: 'http 500' });

    const before = count(200);
    state.status = 200;
    await waitFor(() => m.isUp('a'), 'the target to come back');
    expect(seenAtChange).toEqual([3, before + 2]);
  });

  it('never has two checks of one target in flight', async () => {
    // The server never answers, so each check lasts its whole timeout (5 intervals).
    const { port, stats } = await counting();
    const { m } = monitor({ kind: 'http', path: '/' }, { intervalMs: 20, timeoutMs: 100 });
    m.setTargets([{ name: 'a', host: HOST, port }]);
    m.start();
    await waitFor(() => stats.accepted >= 4, 'several checks');
    expect(stats.maxOpen).toBe(1);
  });

  it('setTargets removal stops checks of that target only', async () => {
    const a = await switchable();
    const b = await switchable();
    const { m } = monitor({ kind: 'http', path: '/' });
    m.setTargets([
      { name: 'a', host: HOST, port: a.port },
      { name: 'b', host: HOST, port: b.port },
    ]);
    m.start();
    await waitFor(() => a.state.total >= 2 && b.state.total >= 2, 'both targets to be checked');
    m.setTargets([{ name: 'a', host: HOST, port: a.port }]);
    // A check in flight at removal is aborted, but its request may already be on the
    // wire: count from when b's last connection is gone.
    await waitFor(async () => (await connections(b.server)) === 0, "b's last check to close");
    const bAfter = b.state.total;
    const aAfter = a.state.total;
    await waitFor(() => a.state.total >= aAfter + 5, 'more checks of the remaining target');
    expect(b.state.total).toBe(bAfter);
  });

  it('an address change keeps state and checks the new address', async () => {
    const oldServer = await switchable();
    const newServer = await switchable();
    const { m, changes } = monitor({ kind: 'http', path: '/' }, { fall: 1 });
    m.setTargets([{ name: 'a', host: HOST, port: oldServer.port }]);
    m.reportFailure('a', 'connect ECONNREFUSED');
    m.setTargets([{ name: 'a', host: HOST, port: newServer.port }]);
    expect(m.isUp('a')).toBe(false);
    m.start();
    await waitFor(() => m.isUp('a'), 'the target to rise on its new address');
    expect(newServer.state.total).toBeGreaterThanOrEqual(2);
    expect(oldServer.state.total).toBe(0);
    expect(changes.map((c) => c.up)).toEqual([false, true]);
  });

  it('stop() aborts checks in flight and starts no more', async () => {
    const { server, port, stats } = await counting();
    const { m } = monitor({ kind: 'http', path: '/' }, { intervalMs: 20, timeoutMs: 30_000 });
    m.setTargets([{ name: 'a', host: HOST, port }]);
    m.start();
    await waitFor(() => stats.open === 1, 'a check to be in flight');
    m.stop();
    // Well before the 30 s timeout: stop() destroyed the socket.
    await waitFor(async () => (await connections(server)) === 0, 'the aborted check to close', 5000);
    const accepted = stats.accepted;
    await sleep(200);
    expect(stats.accepted).toBe(accepted);
  });

  it('onChange may remove its own target', async () => {
    const { port, state } = await switchable();
    state.status = 500;
    const holder: { m?: HealthMonitor } = {};
    const { m } = monitor({ kind: 'http', path: '/' }, { fall: 1, onChange: () => holder.m!.setTargets([]) });
    holder.m = m;
    m.setTargets([{ name: 'a', host: HOST, port }]);
    m.start();
    await waitFor(() => m.snapshot().length === 0, 'the target to be removed');
    const total = state.total;
    await sleep(200);
    expect(state.total).toBe(total);
  });
});
