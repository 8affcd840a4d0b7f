import { describe, expect, it } from 'vitest';
import { buildTable } from '../../../src/hashing/tables.js';
import { maglevTableSize } from '../../../src/hashing/maglev.js';
import type { Algorithm, BuildOptions } from '../../../src/hashing/types.js';
import { counts, maxOverMean, members, sequentialKeys, sessionKeys } from './helpers.js';

const KEY_SETS = [
  ['key-i', sequentialKeys(100_000)],
  ['sess-hex', sessionKeys(100_000)],
] as const;

// Fullest of 10 equal members over the mean, 100,000 keys. With 10,000 keys a
// member, sampling alone spreads shares by ~0.95% (binomial sd), and the fullest of
// 10 lands near +1.5 sd: even a perfect mapping exceeds 1.02 for about one key set
// in six. Maglev's table is exact (next block), so its bound here is 1.03 and the
// 1.02 claim is checked with 1,000,000 keys, where sampling noise is 0.3%.
const BOUNDS: readonly [string, Algorithm, BuildOptions, number][] = [
  ['ring, 160 vnodes', 'ring', { vnodes: 160 }, 1.25],
  ['ring, 1000 vnodes', 'ring', { vnodes: 1000 }, 1.1],
  ['maglev', 'maglev', { vnodes: 160 }, 1.03],
  ['rendezvous', 'rendezvous', { vnodes: 160 }, 1.05],
];

describe.each(KEY_SETS)('balance over 10 equal members, keys %s', (_label, keys) => {
  it.each(BOUNDS)('%s: fullest / mean within bound', (_name, algorithm, options, bound) => {
    expect(maxOverMean(buildTable(algorithm, members(10), options), keys)).toBeLessThanOrEqual(bound);
  });
});

describe('maglev table balance', () => {
  it('gives every member M/N slots to within one', () => {
    const table = buildTable('maglev', members(10), { vnodes: 1 });
    // Every slot is one of the M table entries: hash h maps to slot h itself for h < M.
    const m = maglevTableSize(10);
    const slots = new Float64Array(10);
    for (let h = 0; h < m; h++) slots[table.primary(h)]++;
    expect(Math.max(...slots) - Math.min(...slots)).toBeLessThanOrEqual(1);
  });

  it('keeps the fullest of 10 within 1.02 of the mean once sampling noise is small (1,000,000 keys)', () => {
    const keys = sequentialKeys(1_000_000);
    expect(maxOverMean(buildTable('maglev', members(10), { vnodes: 1 }), keys)).toBeLessThanOrEqual(1.02);
  });
});

describe.each(['ring', 'maglev', 'rendezvous'] as const)('%s weights', (algorithm) => {
  it('gives a weight-2 member about twice the share of a weight-1 member (within 15%)', () => {
    const list = members(10).map((m, i) => (i === 3 ? { ...m, weight: 2 } : m));
    const byName = counts(buildTable(algorithm, list, { vnodes: 160 }), KEY_SETS[0][1]);
    const heavy = byName.get('up-3')!;
    const lightMean = ([...byName.values()].reduce((a, b) => a + b, 0) - heavy) / 9;
    const ratio = heavy / lightMean;
    expect(ratio).toBeGreaterThan(2 * 0.85);
    expect(ratio).toBeLessThan(2 * 1.15);
  });

  it('gives shares in proportion to weights 1, 2, 4, 8 (within 15%)', () => {
    const list = [1, 2, 4, 8].map((weight, i) => ({ name: `w-${i}`, weight }));
    const byName = counts(buildTable(algorithm, list, { vnodes: 160 }), KEY_SETS[1][1]);
    const unit = KEY_SETS[1][1].length / 15;
    for (const { name, weight } of list) {
      expect(byName.get(name)! / (unit * weight), name).toBeGreaterThan(0.85);
      expect(byName.get(name)! / (unit * weight), name).toBeLessThan(1.15);
    }
  });
});

describe('modulo', () => {
  it('balances as well as the hash itself (it exists to show disruption, not imbalance)', () => {
    expect(maxOverMean(buildTable('modulo', members(10), { vnodes: 1 }), KEY_SETS[0][1])).toBeLessThan(1.03);
  });
});
