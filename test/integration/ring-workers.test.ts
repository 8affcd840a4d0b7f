import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTable } from '../../src/hashing/tables.js';
import { hashKey } from '../../src/hashing/hash.js';
import { clientAddress } from '../helpers/clients.js';
import { seededRandom } from '../helpers/random.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { startWsUpstream, type WsUpstream } from '../helpers/ws.js';

let tether: RunningTether | null = null;
let upstream: WsUpstream | null = null;
const stops: (() => void)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await tether?.close();
  tether = null;
  await upstream?.close();
  upstream = null;
});

/**
 * One WebSocket through the balancer that sends a numbered message every 5 ms and
 * checks each echo comes back, in order.
 */
interface Pinger {
  readonly ready: Promise<void>;
  sent(): number;
  answered(): number;
  /** Echoes that came back out of order (or never, once all are in). */
  lost(): number;
  closed(): boolean;
  /** Longest round trip since the last call (for the log line; not asserted). */
  takeWorstMs(): number;
  stop(): void;
}

function startPinger(port: number): Pinger {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/`, { localAddress: '127.0.0.3' });
  const sentAt: number[] = [];
  let answered = 0;
  let outOfOrder = 0;
  let worst = 0;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  socket.on('message', (data) => {
    const n = Number(String(data).split(':')[1]);
    if (n !== answered) outOfOrder++;
    worst = Math.max(worst, performance.now() - sentAt[n]!);
    answered++;
  });
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('open', () => {
      timer = setInterval(() => {
        sentAt.push(performance.now());
        socket.send(String(sentAt.length - 1));
      }, 5);
      resolve();
    });
    socket.once('error', reject);
  });
  return {
    ready,
    sent: () => sentAt.length,
    answered: () => answered,
    lost: () => outOfOrder,
    closed: () => closed,
    takeWorstMs: () => {
      const w = worst;
      worst = 0;
      return w;
    },
    stop: () => {
      if (timer) clearInterval(timer);
      socket.terminate();
    },
  };
}

/** New connections from changing addresses while the membership churns: each must echo. */
function startDialer(port: number): { ok: () => number; failed: () => number; stop: () => void } {
  let ok = 0;
  let failed = 0;
  let stopped = false;
  let i = 0;
  const dial = (): void => {
    if (stopped) return;
    const socket = new WebSocket(`ws://127.0.0.1:${port}/`, { localAddress: clientAddress(100 + (i++ % 400)) });
    const timer = setTimeout(() => done(false), 10_000);
    const done = (good: boolean): void => {
      clearTimeout(timer);
      if (stopped) return;
      if (good) ok++;
      else failed++;
      socket.terminate();
      setTimeout(dial, 20);
    };
    socket.on('error', () => done(false));
    socket.on('open', () => socket.send('dial'));
    socket.on('message', () => done(true));
  };
  dial();
  return { ok: () => ok, failed: () => failed, stop: () => (stopped = true) };
}

/** PUT or DELETE `names` 50 at a time (each batch concurrent; each call answers once its table is in use). */
async function inBatches(names: readonly string[], call: (name: string) => Promise<number>, expected: number): Promise<void> {
  for (let i = 0; i < names.length; i += 50) {
    const statuses = await Promise.all(names.slice(i, i + 50).map(call));
    for (const s of statuses) expect(s).toBe(expected);
  }
}

/**
 * Where 2,000 keys go now, against a ring built from scratch over `members`; 50 of
 * them also through GET /route. (Each /route answer lists every upstream in retry
 * order, a walk of the whole ring at 1,500 upstreams: asking it 2,000 times would
 * measure that, not routing.)
 */
async function expectFreshRouting(t: RunningTether, members: readonly string[], weights: Readonly<Record<string, number>> = {}): Promise<void> {
  const table = buildTable('ring', members.map((name) => ({ name, weight: weights[name] ?? 1 })), { vnodes: 160 });
  const pool = t.tether.runtime()!.pool;
  const keys = Array.from({ length: 2000 }, (_, i) => `client-${i}`);
  const fresh = keys.map((k) => table.members[table.primary(hashKey(k))]!.name);
  expect(keys.map((k) => pool.route(k, 1).candidates[0]!.name)).toEqual(fresh);
  for (let i = 0; i < 50; i++) {
    const { body } = await adminCall(t.admin, 'GET', `/route?key=${keys[i]}`);
    expect((body as { upstream: string }).upstream).toBe(fresh[i]);
  }
  expect([...pool.table.members.map((m) => m.name)].sort()).toEqual([...members].sort());
}

/** tether_ring_builds_total by kind: rings derived from the previous one, and tables built whole. */
async function buildKinds(t: RunningTether): Promise<{ incremental: number; full: number }> {
  const metrics = String((await adminCall(t.admin, 'GET', '/metrics')).body);
  const count = (kind: string): number => Number(new RegExp(`^tether_ring_builds_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(metrics)![1]);
  return { incremental: count('incremental'), full: count('full') };
}

describe('ring builds in worker threads under churn', () => {
  it('1,500 upstreams added 50 at a time, then removed: a WebSocket echo every 5 ms keeps answering, and routing ends equal to a fresh build', async () => {
    upstream = await startWsUpstream('echo');
    const address = upstream.address;
    tether = await startTether({ TETHER_UPSTREAMS: `base=${address}`, TETHER_HEALTH: 'off', TETHER_RING_THREADS: '1' });
    const t = tether;
    const pinger = startPinger(t.port);
    stops.push(pinger.stop);
    await pinger.ready;
    const dialer = startDialer(t.port);
    stops.push(dialer.stop);

    // Every upstream name points at the one echo server: any route reaches it.
    const added = Array.from({ length: 1500 }, (_, i) => `pod-${i}`);
    pinger.takeWorstMs();
    await inBatches(added, async (name) => (await adminCall(t.admin, 'PUT', `/upstreams/${name}`, { address })).status, 201);
    const worstAdding = pinger.takeWorstMs();
    await expectFreshRouting(t, ['base', ...added]);
    // Batches of 50 joining hundreds: derived from the previous ring, not built whole.
    const afterAdding = await buildKinds(t);
    expect(afterAdding.incremental).toBeGreaterThan(20);

    // Remove all but 100, in a shuffled order, then the last 100.
    const random = seededRandom(4);
    const order = [...added].sort(() => random() - 0.5);
    const keep = order.slice(1400);
    pinger.takeWorstMs();
    await inBatches(order.slice(0, 1400), async (name) => (await adminCall(t.admin, 'DELETE', `/upstreams/${name}`)).status, 200);
    const worstRemoving = pinger.takeWorstMs();
    await expectFreshRouting(t, ['base', ...keep]);
    const afterRemoving = await buildKinds(t);
    expect(afterRemoving.incremental).toBeGreaterThan(afterAdding.incremental + 10);

    // One change that makes most of the ring new (base to weight 256 of 356): the
    // worker builds it whole, and routing is still a fresh build's.
    expect((await adminCall(t.admin, 'PUT', '/upstreams/base', { address, weight: 256 })).status).toBe(200);
    const afterHeavy = await buildKinds(t);
    expect(afterHeavy).toEqual({ incremental: afterRemoving.incremental, full: afterRemoving.full + 1 });
    await expectFreshRouting(t, ['base', ...keep], { base: 256 });
    // And the next small change is derived from that whole build.
    expect((await adminCall(t.admin, 'DELETE', `/upstreams/${keep[0]!}`)).status).toBe(200);
    expect(await buildKinds(t)).toEqual({ incremental: afterHeavy.incremental + 1, full: afterHeavy.full });
    await expectFreshRouting(t, ['base', ...keep.slice(1)], { base: 256 });
    await inBatches(keep.slice(1), async (name) => (await adminCall(t.admin, 'DELETE', `/upstreams/${name}`)).status, 200);
    await expectFreshRouting(t, ['base'], { base: 256 });

    // Every echo asked for during the churn came back, in order, on a connection never closed.
    const sent = pinger.sent();
    await expect.poll(() => pinger.answered() >= sent, { timeout: 10_000 }).toBe(true);
    expect(pinger.lost()).toBe(0);
    expect(pinger.closed()).toBe(false);
    expect(sent).toBeGreaterThan(100);
    expect(dialer.failed()).toBe(0);
    expect(dialer.ok()).toBeGreaterThan(10);
    const status = t.tether.runtime()!.pool.tableStatus();
    expect(status.tableVersion).toBe(status.version);
    // Far fewer builds than changes: bursts coalesce.
    const metrics = String((await adminCall(t.admin, 'GET', '/metrics')).body);
    const builds = Number(/^tether_ring_build_seconds_count (\d+)/m.exec(metrics)![1]);
    expect(builds).toBeLessThan(3000 / 4);
    // For the record only (speed is measured in native-bench/): the test, the balancer
    // and the upstream share this one event loop.
    console.log(
      `churn: ${sent} echoes; worst round trip ${worstAdding.toFixed(1)} ms while adding, ${worstRemoving.toFixed(1)} ms while removing; ` +
        `${dialer.ok()} new connections; ${builds} builds for 3,000 changes (${(await buildKinds(t)).incremental} derived from the previous ring)`,
    );
  });

  it('TETHER_RING_THREADS=0 builds on the main thread and routes the same', async () => {
    upstream = await startWsUpstream('echo');
    tether = await startTether({ TETHER_UPSTREAMS: `base=${upstream.address}`, TETHER_HEALTH: 'off', TETHER_RING_THREADS: '0' });
    const t = tether;
    const names = Array.from({ length: 30 }, (_, i) => `pod-${i}`);
    await inBatches(names, async (name) => (await adminCall(t.admin, 'PUT', `/upstreams/${name}`, { address: upstream!.address })).status, 201);
    await expectFreshRouting(t, ['base', ...names]);
    // One more: derived from the previous ring on the main thread too.
    const before = await buildKinds(t);
    expect((await adminCall(t.admin, 'PUT', '/upstreams/pod-30', { address: upstream.address })).status).toBe(201);
    expect(await buildKinds(t)).toEqual({ incremental: before.incremental + 1, full: before.full });
    await expectFreshRouting(t, ['base', ...names, 'pod-30']);
  });
});
