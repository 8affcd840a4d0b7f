import { describe, expect, it } from 'vitest';
import { TetherError } from '../../../src/errors.js';
import { MAX_RING_POINTS, buildTable, buildTableData } from '../../../src/hashing/tables.js';
import { isPrime, maglevTableSize } from '../../../src/hashing/maglev.js';
import type { Algorithm, BuildOptions, Member } from '../../../src/hashing/types.js';
import { members, sequentialKeys } from './helpers.js';

describe('validation', () => {
  const cases: [string, Algorithm, readonly Member[], BuildOptions, RegExp][] = [
    ['unknown algorithm', 'crc' as Algorithm, members(2), { vnodes: 1 }, /^algorithm must be one of ring, maglev/],
    ['empty name', 'ring', [{ name: '', weight: 1 }], { vnodes: 1 }, /^members\[0\]\.name must be a non-empty string/],
    ['duplicate name', 'rendezvous', [...members(2), { name: 'up-0', weight: 1 }], { vnodes: 1 }, /^members\[2\]\.name "up-0" is not unique/],
    ['weight 0', 'maglev', [{ name: 'a', weight: 0 }], { vnodes: 1 }, /^members\[0\]\.weight must be an integer from 1 to 256 \(got 0\)/],
    ['weight 257', 'ring', [{ name: 'a', weight: 257 }], { vnodes: 1 }, /weight must be an integer from 1 to 256 \(got 257\)/],
    ['weight 1.5', 'modulo', [{ name: 'a', weight: 1.5 }], { vnodes: 1 }, /got 1\.5/],
    ['vnodes 0', 'ring', members(2), { vnodes: 0 }, /^options\.vnodes must be a positive integer \(got 0\)/],
    ['vnodes 2.5', 'ring', members(2), { vnodes: 2.5 }, /^options\.vnodes must be a positive integer/],
    ['too many points', 'ring', [{ name: 'a', weight: 256 }], { vnodes: MAX_RING_POINTS }, /^options\.vnodes x total weight must be at most/],
    ['maglevSize not prime', 'maglev', members(2), { vnodes: 1, maglevSize: 65536 }, /^options\.maglevSize must be a prime >= the number of members \(got 65536\)/],
    ['maglevSize too small', 'maglev', members(5), { vnodes: 1, maglevSize: 3 }, /got 3/],
    ['maglevSize too large', 'maglev', members(5), { vnodes: 1, maglevSize: 16777259 }, /^a Maglev table holds at most 16777216 slots/],
  ];

  it.each(cases)('rejects %s with a TETHER_ERR_CONFIG naming the option', (_label, algorithm, list, options, message) => {
    let error: unknown;
    try {
      buildTableData(algorithm, list, options);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TetherError);
    expect((error as TetherError).code).toBe('TETHER_ERR_CONFIG');
    expect((error as TetherError).message).toMatch(message);
  });

  it('ignores vnodes for algorithms that have none', () => {
    expect(() => buildTableData('maglev', members(2), { vnodes: 0 })).not.toThrow();
  });
});

describe('ring data', () => {
  it('holds vnodes x weight points per member, sorted, owners in range', () => {
    const list = [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 3 },
    ];
    const data = buildTableData('ring', list, { vnodes: 50 });
    if (data.algorithm !== 'ring') throw new Error('not a ring');
    expect(data.points.length).toBe(200);
    expect(data.owners.length).toBe(200);
    for (let i = 1; i < data.points.length; i++) expect(data.points[i]).toBeGreaterThanOrEqual(data.points[i - 1]!);
    const perOwner = [0, 0];
    for (const o of data.owners) perOwner[o]!++;
    expect(perOwner).toEqual([50, 150]);
  });

  it('wraps a hash above the last point to the first point', () => {
    const data = buildTableData('ring', members(3), { vnodes: 4 });
    if (data.algorithm !== 'ring') throw new Error('not a ring');
    const table = buildTable('ring', members(3), { vnodes: 4 });
    const last = data.points[data.points.length - 1]!;
    if (last < 0xffffffff) expect(table.primary(last + 1)).toBe(data.owners[0]);
    expect(table.primary(data.points[0]!)).toBe(data.owners[0]);
    expect(table.primary(0)).toBe(data.owners[0]);
  });

  it('builds 5000 members x 160 points (800,000) quickly; prints the time', () => {
    const list = members(5000, 'upstream-');
    const start = performance.now();
    const data = buildTableData('ring', list, { vnodes: 160 });
    const ms = performance.now() - start;
    console.log(`ring build, 5000 members x 160 vnodes: ${ms.toFixed(0)} ms`);
    if (data.algorithm !== 'ring') throw new Error('not a ring');
    expect(data.points.length).toBe(800_000);
  });
});

describe('maglev data', () => {
  it('uses 65537 slots up to 655 members, then primes >= 100 x members that change only at doublings', () => {
    expect(maglevTableSize(0)).toBe(65537);
    expect(maglevTableSize(655)).toBe(65537);
    const sizes = [656, 700, 1000, 1310, 1311, 5000].map(maglevTableSize);
    for (const [i, n] of [656, 700, 1000, 1310, 1311, 5000].entries()) {
      expect(isPrime(sizes[i]!)).toBe(true);
      expect(sizes[i]).toBeGreaterThanOrEqual(100 * n);
    }
    expect(sizes[0]).toBe(sizes[3]); // 656 .. 1310 share one size
    expect(sizes[4]).toBeGreaterThan(sizes[3]!);
  });

  it('honours an explicit prime size and fills every slot', () => {
    const data = buildTableData('maglev', members(3), { vnodes: 1, maglevSize: 101 });
    if (data.algorithm !== 'maglev') throw new Error('not maglev');
    expect(data.slots.length).toBe(101);
    for (const s of data.slots) expect(s).toBeLessThan(3);
  });

  it('gives 5000 members a full table; prints the build time', () => {
    const start = performance.now();
    const data = buildTableData('maglev', members(5000, 'upstream-'), { vnodes: 1 });
    console.log(`maglev build, 5000 members (M = ${maglevTableSize(5000)}): ${(performance.now() - start).toFixed(0)} ms`);
    if (data.algorithm !== 'maglev') throw new Error('not maglev');
    const seen = new Uint8Array(5000);
    for (const s of data.slots) seen[s] = 1;
    expect(seen.every((x) => x === 1)).toBe(true);
  });
});

describe('isPrime', () => {
  it.each([
    [2, true],
    [3, true],
    [4, false],
    [65537, true],
    [65535, false],
    [1, false],
    [0, false],
    [-7, false],
    [7.5, false],
  ])('isPrime(%d) = %s', (n, expected) => {
    expect(isPrime(n)).toBe(expected);
  });
});

// Indicative only (vitest adds its own overhead); native-bench/hash-quality.mjs has the real numbers.
describe('lookup speed (printed, not asserted)', () => {
  it('prints lookups per second per algorithm at 100 members', () => {
    const keys = sequentialKeys(200_000);
    const out = new Uint32Array(3);
    for (const algorithm of ['ring', 'maglev', 'rendezvous', 'modulo'] as const) {
      const table = buildTable(algorithm, members(100), { vnodes: 160 });
      let sink = 0;
      for (let i = 0; i < keys.length; i++) sink += table.primary(keys[i]!) + table.order(keys[i]!, out); // warm-up
      let start = performance.now();
      for (let i = 0; i < keys.length; i++) sink += table.primary(keys[i]!);
      const primaryMs = performance.now() - start;
      start = performance.now();
      for (let i = 0; i < keys.length; i++) sink += table.order(keys[i]!, out);
      const orderMs = performance.now() - start;
      console.log(
        `${algorithm}: primary ${((keys.length / primaryMs) * 1000 / 1e6).toFixed(1)} M/s, ` +
          `order(3) ${((keys.length / orderMs) * 1000 / 1e6).toFixed(1)} M/s (${sink > 0 ? 'ok' : ''})`,
      );
    }
    expect(true).toBe(true);
  });
});
