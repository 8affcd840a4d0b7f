import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/store/memory.js';
import { pinStoreSuite } from './store.suite.js';

pinStoreSuite('memory', async () => {
  const store = new MemoryStore();
  return { store, close: () => store.close() };
});

describe('MemoryStore bounded by TETHER_STICKY_MAX', () => {
  it('1,000,000 distinct keys keep it at maxPins, the least recently used evicted and counted', async () => {
    let evicted = 0;
    const store = new MemoryStore({ maxPins: 10_000, onEvict: () => evicted++ });
    const pins = store.pins('default');
    await pins.set('kept', 'a', 3600);
    for (let i = 0; i < 1_000_000; i++) {
      void pins.set(`k${i}`, 'b', 3600); // settles at once (memory)
      // A key in use is never the least recently used: it stays however many come after.
      if (i % 5_000 === 0) expect(await pins.get('kept')).toBe('a');
      if (i % 100_000 === 0) expect(store.size).toBeLessThanOrEqual(10_000);
    }
    expect(store.size).toBe(10_000);
    expect(evicted).toBe(1_000_001 - 10_000);
    expect(await pins.get('kept')).toBe('a');
    // The newest 9,999 are there beside it, the ones before them gone.
    expect(await pins.get('k999999')).toBe('b');
    expect(await pins.get(`k${1_000_000 - 9_999}`)).toBe('b');
    expect(await pins.get(`k${1_000_000 - 10_000}`)).toBeNull();
    expect(await pins.get('k0')).toBeNull();
    await store.close();
  });

  it('touch renews recency too; set on a held key replaces it without evicting', async () => {
    let evicted = 0;
    const store = new MemoryStore({ maxPins: 3, onEvict: () => evicted++ });
    const pins = store.pins('l');
    await pins.set('a', 'x', 60);
    await pins.set('b', 'x', 60);
    await pins.set('c', 'x', 60);
    await pins.touch('a', 60);
    await pins.set('c', 'y', 60);
    expect(evicted).toBe(0);
    await pins.set('d', 'x', 60);
    expect(evicted).toBe(1);
    expect(await pins.get('b')).toBeNull();
    expect(await pins.get('a')).toBe('x');
    expect(await pins.get('c')).toBe('y');
    await store.close();
  });

  it('the bound is for every listener together', async () => {
    const evicted: string[] = [];
    const store = new MemoryStore({ maxPins: 4, onEvict: (listener, key) => evicted.push(`${listener}/${key}`) });
    const one = store.pins('one');
    const two = store.pins('two');
    for (const k of ['a', 'b', 'c']) await one.set(k, 'x', 60);
    await two.set('z', 'x', 60);
    await two.set('y', 'x', 60);
    expect(store.size).toBe(4);
    // two's only older pin went; one's stay. Whose and which is told (TETHER_WORKERS: the caches drop it).
    expect(await two.get('z')).toBeNull();
    expect(evicted).toEqual(['two/z']);
    expect(await one.get('a')).toBe('x');
    await store.close();
  });
});
