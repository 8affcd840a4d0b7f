import { describe, expect, it } from 'vitest';
import { pickBounded } from '../../../src/routing/bounded.js';
import { buildTable } from '../../../src/hashing/tables.js';
import { hashKey } from '../../../src/hashing/hash.js';
import { CONSISTENT, OPTIONS, members } from '../hashing/helpers.js';

/** 300 arrivals: every other one shares the hot key, the rest are distinct keys. */
function arrivals(): Uint32Array {
  const out = new Uint32Array(300);
  for (let i = 0; i < 300; i++) out[i] = i % 2 === 0 ? hashKey('hot-session') : hashKey(`client-${i}`);
  return out;
}

function simulate(algorithm: (typeof CONSISTENT)[number], factor: number): Float64Array {
  const table = buildTable(algorithm, members(3), OPTIONS);
  const loads = new Float64Array(3);
  const weights = new Float64Array([1, 1, 1]);
  const order = new Uint32Array(3);
  let total = 0;
  for (const hash of arrivals()) {
    const count = table.order(hash, order);
    const pick = factor > 0 ? pickBounded(order, count, loads, weights, total, 3, factor) : order[0]!;
    loads[pick]!++;
    total++;
  }
  return loads;
}

describe.each(CONSISTENT)('%s with bounded loads', (algorithm) => {
  it('keeps every member within 1.25 x the mean (125 of 300)', () => {
    const loads = simulate(algorithm, 1.25);
    expect(Math.max(...loads)).toBeLessThanOrEqual(125);
    expect(loads.reduce((a, b) => a + b, 0)).toBe(300);
  });

  it('without the bound, the member of the hot key holds more than half of everything', () => {
    expect(Math.max(...simulate(algorithm, 0))).toBeGreaterThan(150);
  });
});

describe('pickBounded', () => {
  const order = new Uint32Array([2, 0, 1]);
  const weights = [1, 1, 1];

  it('takes the first member in hash order that has room', () => {
    // total 9 -> capacity ceil(1.25 x 10 / 3) = 5 each.
    expect(pickBounded(order, 3, [3, 3, 3], weights, 9, 3, 1.25)).toBe(2);
    expect(pickBounded(order, 3, [3, 3, 5], weights, 11, 3, 1.25)).toBe(0); // cap ceil(1.25 x 12 / 3) = 5: member 2 is full
  });

  it('admits exactly up to the capacity, with no floating-point slack', () => {
    // c = 1.1, total + 1 = 300, 3 members: capacity ceil(110.000...) = 110, so load 109 fits and 110 does not,
    // although 1.1 x 300 / 3 is 110.00000000000001 in floating point.
    expect(pickBounded(order, 3, [0, 0, 109], weights, 299, 3, 1.1)).toBe(2);
    expect(pickBounded(order, 3, [0, 0, 110], weights, 299, 3, 1.1)).toBe(0);
  });

  it('scales capacity with weight', () => {
    // weights 1, 1, 2 (total 4), total + 1 = 8, c = 1.25: capacities 3, 3, 5.
    const w = [1, 1, 2];
    expect(pickBounded(order, 3, [0, 0, 4], w, 7, 4, 1.25)).toBe(2);
    expect(pickBounded(order, 3, [3, 0, 5], w, 7, 4, 1.25)).toBe(1);
  });

  it('falls back to the lowest load per weight when the order is cut short and all are full', () => {
    // order [2, 0], weights 1, 1, 2, c = 1. Loads 9, 0, 10 (total 19): capacities 5 and 10, both full;
    // 10/2 < 9/1, so member 2.
    expect(pickBounded(order, 2, [9, 0, 10], [1, 1, 2], 19, 4, 1.0)).toBe(2);
    // Loads 8, 0, 20 (total 28): capacities 8 and 15, both full; 8/1 < 20/2, so member 0.
    expect(pickBounded(order, 2, [8, 0, 20], [1, 1, 2], 28, 4, 1.0)).toBe(0);
  });

  it('never returns a member outside order[0..count)', () => {
    expect(pickBounded(order, 1, [50, 0, 50], weights, 100, 3, 1.25)).toBe(2);
  });

  it('returns -1 for an empty order', () => {
    expect(pickBounded(order, 0, [0, 0, 0], weights, 0, 3, 1.25)).toBe(-1);
  });

  it('always finds room when the whole order is given and c >= 1', () => {
    const loads = [7, 3, 0, 12, 5];
    const total = loads.reduce((a, b) => a + b, 0);
    const all = new Uint32Array([3, 0, 4, 1, 2]);
    const pick = pickBounded(all, 5, loads, [1, 1, 1, 1, 1], total, 5, 1.0);
    expect(loads[pick]! + 1).toBeLessThanOrEqual(Math.ceil((total + 1) / 5));
  });
});
