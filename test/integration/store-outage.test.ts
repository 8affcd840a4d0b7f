/**
 * Redis going away never takes traffic down: connections keep flowing, /readyz stays
 * up, failures are counted; when Redis returns the instances reconcile without a
 * restart, and changes flow again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientAddress, connectAndGreet } from '../helpers/clients.js';
import { membershipOf, routesAlike, spawnInstance, spawnInstances, timeUntil, type Instance } from '../helpers/instances.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { adminCall } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

/** No new connection may wait longer than this while Redis is down. */
const CONNECT_BOUND_MS = 500;
const KEYS = Array.from({ length: 1_000 }, (_, i) => `client-${i}`);

let redis: RedisServer;
let upstreams: TestUpstream[];
let instances: Instance[] = [];

beforeAll(async () => {
  redis = await startRedis();
  upstreams = await startUpstreams(['a', 'b', 'c']);
});
afterAll(async () => {
  await redis?.stop();
  await Promise.all((upstreams ?? []).map((u) => u.close()));
});
afterEach(async () => {
  await Promise.all(instances.map((i) => i.stop()));
  instances = [];
  if (redis.pid === null) await redis.restart();
  redis.cli('flushall');
});

const env = (): Record<string, string> => ({ TETHER_STORE: redis.url, TETHER_UPSTREAMS: upstreamList(upstreams) });
const view = (name: string, state = 'up'): string => `${name}@${upstreams.find((u) => u.name === name)!.address}*1:${state}`;

async function storeErrors(admin: string): Promise<number> {
  const text = (await adminCall(admin, 'GET', '/metrics')).body as string;
  const match = /^tether_store_errors_total (\d+)/m.exec(text);
  if (match === null) throw new Error('no tether_store_errors_total in /metrics');
  return Number(match[1]);
}

interface Attempt {
  readonly ok: boolean;
  readonly ms: number;
  readonly afterKill: boolean;
}

/** New connections through `port` from many client addresses, `workers` at a time, until stopped. */
function traffic(port: number, workers: number): { attempts: Attempt[]; phase: { killed: boolean }; stop(): Promise<void> } {
  const attempts: Attempt[] = [];
  const phase = { killed: false };
  let running = true;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (running) {
      const started = performance.now();
      const afterKill = phase.killed;
      const greeting = await connectAndGreet(port, clientAddress(next++ % 240)).catch(() => null);
      attempts.push({ ok: greeting?.upstream != null, ms: performance.now() - started, afterKill });
      greeting?.socket.destroy();
    }
  };
  const all = Promise.all(Array.from({ length: workers }, worker));
  return {
    attempts,
    phase,
    stop: async () => {
      running = false;
      await all;
    },
  };
}

describe('Redis outage', () => {
  it('killed mid-traffic: every connection through A succeeds quickly, /readyz stays up, errors count; restarted: reconciled, changes flow', async () => {
    instances = await spawnInstances(2, env());
    const [a, b] = instances as [Instance, Instance];
    // A change made before the outage.
    expect((await adminCall(a.admin, 'POST', '/upstreams/c/drain', {})).status).toBe(200);
    const drained = [view('a'), view('b'), view('c', 'draining')];
    await timeUntil(async () => JSON.stringify(await membershipOf(b.admin)) === JSON.stringify(drained));
    const errorsBefore = await storeErrors(a.admin);

    const load = traffic(a.port, 4);
    await timeUntil(async () => load.attempts.length >= 40, 15_000, 'traffic before the kill');
    await redis.kill();
    load.phase.killed = true;
    await a.proc.waitForLog((l) => l.msg === 'store unreachable: routing by hash until it returns', 15_000);

    // During the outage: ready, and admin changes refused (nothing changes anywhere).
    const readyz = await adminCall(a.admin, 'GET', '/readyz');
    expect(readyz.status).toBe(200);
    const refused = await adminCall(a.admin, 'DELETE', '/upstreams/a');
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ code: 'TETHER_ERR_STORE' });
    expect(await membershipOf(a.admin)).toEqual(drained);
    await timeUntil(async () => load.attempts.filter((x) => x.afterKill).length >= 200, 30_000, 'traffic during the outage');
    expect((await adminCall(a.admin, 'GET', '/readyz')).status).toBe(200);
    await load.stop();

    const duringOutage = load.attempts.filter((x) => x.afterKill);
    expect(load.attempts.filter((x) => !x.ok)).toEqual([]);
    expect(Math.max(...duringOutage.map((x) => x.ms))).toBeLessThan(CONNECT_BOUND_MS);
    expect(await storeErrors(a.admin)).toBeGreaterThan(errorsBefore);

    // Redis returns, empty (no persistence): the instances write back what they hold.
    await redis.restart();
    await Promise.all([a, b].map((i) => i.proc.waitForLog((l) => l.msg === 'store reachable again', 20_000)));
    await timeUntil(async () => redis.cli('hexists', 'tether:membership:default', 'd:c') === '1', 20_000, 'the drain written back');
    expect(await membershipOf(a.admin)).toEqual(drained);
    expect(await membershipOf(b.admin)).toEqual(drained);

    // Changes flow again, both ways, within a second.
    expect((await adminCall(b.admin, 'DELETE', '/upstreams/a')).status).toBe(200);
    const ms = await timeUntil(async () => !(await membershipOf(a.admin)).some((m) => m.startsWith('a@')), 15_000, 'a gone from A');
    expect(ms).toBeLessThan(1_000);
    expect((await adminCall(a.admin, 'POST', '/upstreams/c/undrain')).status).toBe(200);
    await timeUntil(async () => (await membershipOf(b.admin)).includes(view('c')), 15_000, 'c undrained on B');
    {
      const [x, y] = await routesAlike([a.admin, b.admin], KEYS);
      expect(x).toEqual(y);
    }
  });

  it('an instance started while Redis is down routes by its file, then takes the shared membership when Redis returns', async () => {
    instances = await spawnInstances(1, env());
    const [a] = instances as [Instance];
    await adminCall(a.admin, 'DELETE', '/upstreams/b');
    await redis.kill();

    const late = await spawnInstance(env());
    instances.push(late);
    expect((await adminCall(late.admin, 'GET', '/readyz')).status).toBe(200);
    expect(await membershipOf(late.admin)).toEqual([view('a'), view('b'), view('c')]);
    const greeting = await connectAndGreet(late.port, clientAddress(7));
    expect(greeting.upstream).not.toBeNull();
    greeting.socket.destroy();

    await redis.restart();
    // A writes back the DELETE it holds; the late instance picks it up, without a restart.
    await timeUntil(async () => JSON.stringify(await membershipOf(late.admin)) === JSON.stringify([view('a'), view('c')]), 20_000, 'the late instance to reconcile');
    {
      const [x, y] = await routesAlike([late.admin, a.admin], KEYS);
      expect(x).toEqual(y);
    }
  });

  it('hung (SIGSTOP, sockets open): connections flow, an admin change gives up in bounded time, and all converge after', async () => {
    instances = await spawnInstances(2, env());
    const [a, b] = instances as [Instance, Instance];
    redis.pause();
    try {
      const load = traffic(a.port, 2);
      load.phase.killed = true;
      const started = performance.now();
      const answer = await adminCall(a.admin, 'DELETE', '/upstreams/b');
      const adminMs = performance.now() - started;
      expect(answer.status).toBe(503);
      expect(answer.body).toMatchObject({ code: 'TETHER_ERR_STORE' });
      // The admin bound is max(1 s, TETHER_STORE_TIMEOUT_MS); generous ceiling here.
      expect(adminMs).toBeLessThan(5_000);
      await timeUntil(async () => load.attempts.length >= 100, 30_000, 'traffic while Redis hangs');
      await load.stop();
      expect(load.attempts.filter((x) => !x.ok)).toEqual([]);
      expect(Math.max(...load.attempts.map((x) => x.ms))).toBeLessThan(CONNECT_BOUND_MS);
    } finally {
      redis.resume();
    }
    // The DELETE sat in the socket and lands now: "may or may not be made". Either
    // way, every instance ends up with what Redis holds.
    const stored = (): boolean => redis.cli('hexists', 'tether:membership:default', 'm:b') === '1';
    await timeUntil(async () => {
      const expected = stored() ? [view('a'), view('c')] : [view('a'), view('b'), view('c')];
      const [ma, mb] = await Promise.all([membershipOf(a.admin), membershipOf(b.admin)]);
      return JSON.stringify(ma) === JSON.stringify(expected) && JSON.stringify(mb) === JSON.stringify(expected);
    }, 20_000, 'A and B to agree with Redis');
    {
      const [x, y] = await routesAlike([a.admin, b.admin], KEYS);
      expect(x).toEqual(y);
    }
  });
});
