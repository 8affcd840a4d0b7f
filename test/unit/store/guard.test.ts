import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardPins } from '../../../src/store/guard.js';
import { MemoryStore } from '../../../src/store/memory.js';
import type { PinStore } from '../../../src/store/types.js';
import { openRedisStore, startRedis, type OpenStore, type RedisServer } from '../../helpers/redis.js';

/** TETHER_STORE_TIMEOUT_MS for these tests; the bound asserted is ten times it. */
const TIMEOUT_MS = 50;
const BOUND_MS = 500;

let redis: RedisServer;
let open: OpenStore;
let errors = 0;
let pins: PinStore;

beforeAll(async () => {
  redis = await startRedis();
  open = await openRedisStore(redis.url);
  pins = guardPins(open.store, 'web', { timeoutMs: TIMEOUT_MS, onError: () => errors++ });
});
afterAll(async () => {
  await open?.close();
  await redis?.stop();
});

/** Run every PinStore call; each must settle (never reject) within BOUND_MS. */
async function everyCallSettlesFast(): Promise<{ get: string | null; slowest: number }> {
  const timed = async <T>(call: () => Promise<T>): Promise<[T, number]> => {
    const started = performance.now();
    const value = await call();
    return [value, performance.now() - started];
  };
  const [[get, a], [, b], [, c], [, d]] = await Promise.all([
    timed(() => pins.get('upload-1')),
    timed(() => pins.set('upload-2', 'app1', 60)),
    timed(() => pins.touch('upload-1', 60)),
    timed(() => pins.delete('upload-3')),
  ]);
  return { get, slowest: Math.max(a, b, c, d) };
}

describe('guarded pins on a Redis store', () => {
  it('pass calls through while Redis answers', async () => {
    await pins.set('upload-1', 'app2', 60);
    expect(await pins.get('upload-1')).toBe('app2');
    expect(errors).toBe(0);
  });

  it('Redis hangs (SIGSTOP, connections open): every call gives up at the timeout, get answers null', async () => {
    redis.pause();
    try {
      const before = errors;
      const { get, slowest } = await everyCallSettlesFast();
      expect(get).toBeNull();
      expect(slowest).toBeLessThan(BOUND_MS);
      expect(errors - before).toBe(4);
    } finally {
      redis.resume();
    }
    // The pin written before the hang is still there once Redis answers again.
    expect(await pins.get('upload-1')).toBe('app2');
  });

  it('Redis killed: calls fail at once, counted; restarted: pins work again without a new store', async () => {
    await redis.kill();
    const before = errors;
    const { get, slowest } = await everyCallSettlesFast();
    expect(get).toBeNull();
    expect(slowest).toBeLessThan(BOUND_MS);
    expect(errors - before).toBe(4);

    await redis.restart();
    expect(await open.store.membership.ready(20_000)).toBe(true);
    // No persistence: the old pin is gone; new ones are written and read again.
    expect(await pins.get('upload-1')).toBeNull();
    await pins.set('upload-9', 'app3', 60);
    expect(await pins.get('upload-9')).toBe('app3');
  });
});

describe('guarded pins on the memory store', () => {
  it('are the store’s own: a local store needs no timer', async () => {
    const store = new MemoryStore();
    const guarded = guardPins(store, 'web', { timeoutMs: TIMEOUT_MS, onError: () => errors++ });
    expect(guarded).toBe(store.pins('web'));
    await store.close();
  });
});
