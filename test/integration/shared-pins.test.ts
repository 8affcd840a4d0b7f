/**
 * Learned pins through the PinStore each listener is handed (ListenerRuntime.pins),
 * two balancers on one real redis-server. What http mode builds on: a pin one
 * instance learns is known to the other; Redis away never holds a connection longer
 * than TETHER_STORE_TIMEOUT_MS; Redis back, pins are shared again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, waitForStore, type RedisServer } from '../helpers/redis.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

const STORE_TIMEOUT_MS = 50;
/** Ten times the setting: what "fails fast" means on a loaded machine. */
const BOUND_MS = 500;

let redis: RedisServer;
let upstreams: TestUpstream[];
let a: RunningTether;
let b: RunningTether;

beforeAll(async () => {
  redis = await startRedis();
  upstreams = await startUpstreams(['app1', 'app2']);
  const env = {
    TETHER_STORE: redis.url,
    TETHER_STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS),
    TETHER_UPSTREAMS: upstreamList(upstreams),
    TETHER_HEALTH: 'off',
  };
  a = await startTether(env);
  b = await startTether(env);
  await Promise.all([waitForStore(a.tether), waitForStore(b.tether)]);
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await redis?.stop();
  await Promise.all((upstreams ?? []).map((u) => u.close()));
});

async function storeErrors(t: RunningTether): Promise<number> {
  const text = (await adminCall(t.admin, 'GET', '/metrics')).body as string;
  return Number(/^tether_store_errors_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

async function timed<T>(call: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await call();
  return [value, performance.now() - started];
}

describe('pins shared between balancers', () => {
  it('a pin set through A is read through B; touched and deleted alike', async () => {
    const pinsA = a.tether.runtime()!.pins;
    const pinsB = b.tether.runtime()!.pins;
    await pinsA.set('upload-7f3a', 'app2', 60);
    expect(await pinsB.get('upload-7f3a')).toBe('app2');
    await pinsB.touch('upload-7f3a', 120);
    await pinsB.delete('upload-7f3a');
    expect(await pinsA.get('upload-7f3a')).toBeNull();
  });

  it('Redis down: get answers null fast and errors count; Redis back: pins learned afterwards are shared again', async () => {
    const pinsA = a.tether.runtime()!.pins;
    const pinsB = b.tether.runtime()!.pins;
    await pinsA.set('before-outage', 'app1', 60);
    const errorsBefore = await storeErrors(b);

    await redis.kill();
    const [got, ms] = await timed(() => pinsB.get('before-outage'));
    expect(got).toBeNull();
    expect(ms).toBeLessThan(BOUND_MS);
    const [, setMs] = await timed(() => pinsA.set('during-outage', 'app1', 60));
    expect(setMs).toBeLessThan(BOUND_MS);
    expect(await storeErrors(b)).toBeGreaterThan(errorsBefore);

    // Hung rather than gone (SIGSTOP after the restart): still bounded.
    await redis.restart();
    await Promise.all([waitForStore(a.tether), waitForStore(b.tether)]);
    redis.pause();
    try {
      const [hung, hungMs] = await timed(() => pinsB.get('anything'));
      expect(hung).toBeNull();
      expect(hungMs).toBeLessThan(BOUND_MS);
    } finally {
      redis.resume();
    }

    await pinsA.set('after-restart', 'app2', 60);
    expect(await pinsB.get('after-restart')).toBe('app2');
    // Redis had no persistence: what was learned before the outage is gone, and re-learned later.
    expect(await pinsB.get('before-outage')).toBeNull();
  });
});
