import { describe, expect, it } from 'vitest';
import { pickTwoChoices } from '../../../src/routing/p2c.js';
import { seededRandom } from '../hashing/helpers.js';

describe('pickTwoChoices', () => {
  it('answers -1 with no members and 0 with one', () => {
    expect(pickTwoChoices(0, [], [])).toBe(-1);
    expect(pickTwoChoices(1, [5], [1])).toBe(0);
  });

  it('never picks the single most loaded member (the two choices are distinct)', () => {
    const random = seededRandom(21);
    for (let i = 0; i < 1000; i++) expect(pickTwoChoices(3, [10, 0, 0], [1, 1, 1], random)).not.toBe(0);
  });

  it('compares load per weight', () => {
    const random = seededRandom(22);
    // 10/4 = 2.5 beats 3/1: the heavy member wins whenever it is drawn.
    const picks = [0, 0];
    for (let i = 0; i < 1000; i++) picks[pickTwoChoices(2, [10, 3], [4, 1], random)]!++;
    expect(picks).toEqual([1000, 0]);
  });

  it('draws every pair: each member of 4 equal ones is chosen about 1/4 of the time', () => {
    const random = seededRandom(23);
    const picks = new Float64Array(4);
    for (let i = 0; i < 40_000; i++) picks[pickTwoChoices(4, [0, 0, 0, 0], [1, 1, 1, 1], random)]++;
    for (const p of picks) expect(Math.abs(p / 10_000 - 1)).toBeLessThan(0.05);
  });

  it('keeps sequential arrivals nearly level, far better than one random choice', () => {
    const gap = (twoChoices: boolean): number => {
      const random = seededRandom(24);
      const loads = new Float64Array(8);
      const weights = new Float64Array(8).fill(1);
      for (let i = 0; i < 8000; i++) {
        const pick = twoChoices ? pickTwoChoices(8, loads, weights, random) : Math.floor(random() * 8);
        loads[pick]++;
      }
      return Math.max(...loads) - Math.min(...loads);
    };
    // Two choices: the gap stays O(log log n), a handful; one choice drifts like sqrt(arrivals).
    expect(gap(true)).toBeLessThanOrEqual(4);
    expect(gap(false)).toBeGreaterThan(20);
  });

  it('keeps 3 members within 1% of each other over 3000 arrivals', () => {
    const random = seededRandom(25);
    const loads = new Float64Array(3);
    for (let i = 0; i < 3000; i++) loads[pickTwoChoices(3, loads, [1, 1, 1], random)]++;
    expect(Math.max(...loads) / Math.min(...loads)).toBeLessThan(1.01);
  });

  it('fills weighted members in proportion to weight', () => {
    const random = seededRandom(26);
    const loads = new Float64Array(3);
    const weights = [1, 2, 5];
    for (let i = 0; i < 8000; i++) loads[pickTwoChoices(3, loads, weights, random)]++;
    for (let i = 0; i < 3; i++) expect(Math.abs(loads[i]! / (1000 * weights[i]!) - 1)).toBeLessThan(0.02);
  });
});
