import { afterEach, describe, expect, it } from 'vitest';
import { InlineTableBuilder } from '../../../src/builders/inline.js';
import { UpstreamPool } from '../../../src/routing/pool.js';
import { routeByCachedPin, routeWithPins, routeWithPinsNow } from '../../../src/routing/router.js';
import { immediatePins } from '../../../src/store/guard.js';
import { MemoryStore } from '../../../src/store/memory.js';

const pools: UpstreamPool[] = [];
const stores: MemoryStore[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) p.close();
  for (const s of stores.splice(0)) await s.close();
});

async function setup(): Promise<{ pool: UpstreamPool; store: MemoryStore }> {
  const specs = ['a', 'b', 'c'].map((name) => ({ name, host: '127.0.0.1', port: 9, weight: 1 }));
  const pool = new UpstreamPool({ algorithm: 'ring', vnodes: 160, balanceFactor: 0 }, specs, { builder: new InlineTableBuilder() });
  pools.push(pool);
  await pool.settled(5_000);
  const store = new MemoryStore();
  stores.push(store);
  return { pool, store };
}

/** A key whose hash does not lead to `name`, so a pin is what sends it there. */
function keyNotHashedTo(pool: UpstreamPool, name: string): string {
  for (let i = 0; ; i++) if (pool.route(`k${i}`, 1).candidates[0]!.name !== name) return `k${i}`;
}

describe('routing with learned pins, through a promise and at once', () => {
  it('the memory store answers at once; Redis-like stores do not', async () => {
    const { store } = await setup();
    expect(immediatePins(store.pins('l'))).not.toBeNull();
    const waiting = { get: store.pins('l').get, set: store.pins('l').set, touch: store.pins('l').touch, delete: store.pins('l').delete };
    expect(immediatePins(waiting)).toBeNull();
  });

  it('both follow the same rules: a pin wins, with the hash order behind it; a pin to a down upstream is dropped', async () => {
    const { pool, store } = await setup();
    const pins = store.pins('l');
    const now = immediatePins(pins)!;
    const key = keyNotHashedTo(pool, 'b');
    const hashed = pool.route(key, 3);

    now.setNow(key, 'b', 60);
    const viaPromise = await routeWithPins(pool, pins, key, 3, 60);
    const viaNow = routeWithPinsNow(pool, now, key, 3, 60);
    for (const d of [viaPromise, viaNow]) {
      expect(d.via).toBe('learned');
      expect(d.candidates.map((u) => u.name)).toEqual(['b', ...hashed.candidates.map((u) => u.name).filter((n) => n !== 'b')]);
    }

    pool.setHealth('b', false, 'test');
    const down = routeWithPinsNow(pool, now, key, 3, 60);
    expect(down.via).toBe(hashed.via);
    expect(down.candidates[0]!.name).toBe(hashed.candidates[0]!.name);
    expect(now.getNow(key)).toBeNull(); // dropped, not kept for later
  });

  it('a lookup renews the pin: it outlives its first TTL while in use', async () => {
    const { pool, store } = await setup();
    const now = immediatePins(store.pins('l'))!;
    const key = keyNotHashedTo(pool, 'c');
    now.setNow(key, 'c', 0.2);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 100));
      expect(routeWithPinsNow(pool, now, key, 1, 0.2).via).toBe('learned');
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(routeWithPinsNow(pool, now, key, 1, 0.2).via).not.toBe('learned');
  });
});

describe("routing by a process's copy of the pins (TETHER_WORKERS)", () => {
  it('uses a held pin at once and renews it; leaves a missing pin, or one to a down upstream, to routeWithPins', async () => {
    const { pool } = await setup();
    const held = new Map<string, string>([['k', 'b']]);
    const renewed: string[] = [];
    const cache = { cached: (key: string) => held.get(key) ?? null, renew: (key: string) => void renewed.push(key) };
    const key = 'k';
    const decision = routeByCachedPin(pool, cache, key, 3, 60);
    expect(decision?.via).toBe('learned');
    expect(decision?.candidates[0]!.name).toBe('b');
    expect(renewed).toEqual(['k']);
    expect(routeByCachedPin(pool, cache, 'unknown', 3, 60)).toBeNull();
    pool.setHealth('b', false, 'test');
    expect(routeByCachedPin(pool, cache, key, 3, 60)).toBeNull();
    expect(renewed).toEqual(['k']);
  });
});
