import { describe, expect, it } from 'vitest';
import { buildTable, buildTableData } from '../../../src/hashing/tables.js';
import type { Member } from '../../../src/hashing/types.js';
import { OPTIONS, assignment, members, sequentialKeys } from './helpers.js';

const KEYS = sequentialKeys(10_000);
const FIVE = members(5);

function moved(before: string[], after: string[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) out.push(i);
  return out;
}

describe.each(['ring', 'rendezvous'] as const)('%s minimal disruption', (algorithm) => {
  const before = assignment(buildTable(algorithm, FIVE, OPTIONS), KEYS);

  it.each(FIVE.map((m) => m.name))('removing %s moves exactly the keys it held', (name) => {
    const after = assignment(buildTable(algorithm, FIVE.filter((m) => m.name !== name), OPTIONS), KEYS);
    const held = before.flatMap((owner, i) => (owner === name ? [i] : []));
    expect(held.length).toBeGreaterThan(1000);
    expect(moved(before, after)).toEqual(held);
  });

  it('adding a removed member back restores the original mapping exactly', () => {
    const without = FIVE.filter((m) => m.name !== 'up-2');
    const restored = assignment(buildTable(algorithm, [...without, FIVE[2]!], OPTIONS), KEYS);
    expect(restored).toEqual(before);
  });

  it('adding a sixth member moves about 1/6 of the keys, all of them to it', () => {
    const after = assignment(buildTable(algorithm, [...FIVE, { name: 'up-5', weight: 1 }], OPTIONS), KEYS);
    const changed = moved(before, after);
    for (const i of changed) expect(after[i]).toBe('up-5');
    expect(changed.length / KEYS.length).toBeGreaterThan(1 / 6 - 0.04);
    expect(changed.length / KEYS.length).toBeLessThan(1 / 6 + 0.04);
  });

  it('changing one weight moves keys only to or from that member', () => {
    const heavier = FIVE.map((m) => (m.name === 'up-1' ? { ...m, weight: 3 } : m));
    const after = assignment(buildTable(algorithm, heavier, OPTIONS), KEYS);
    const changed = moved(before, after);
    expect(changed.length).toBeGreaterThan(0);
    for (const i of changed) expect(after[i]).toBe('up-1');
  });
});

describe('maglev disruption', () => {
  const before = assignment(buildTable('maglev', FIVE, OPTIONS), KEYS);

  it.each(FIVE.map((m) => m.name))('removing %s moves its keys plus under 3%% more', (name) => {
    const after = assignment(buildTable('maglev', FIVE.filter((m) => m.name !== name), OPTIONS), KEYS);
    const changed = moved(before, after);
    const held = before.filter((owner) => owner === name).length;
    // Every key it held must move; the rest are Maglev's small reshuffle (NSDI '16, Fig. 12).
    for (let i = 0; i < KEYS.length; i++) if (before[i] === name) expect(after[i]).not.toBe(name);
    expect((changed.length - held) / KEYS.length).toBeLessThan(0.03);
  });

  it('adding a removed member back restores the original mapping exactly', () => {
    const without: Member[] = FIVE.filter((m) => m.name !== 'up-4');
    const restored = assignment(buildTable('maglev', [FIVE[4]!, ...without], OPTIONS), KEYS);
    expect(restored).toEqual(before);
  });

  it('adding a sixth member moves about 1/6 of the keys, nearly all of them to it', () => {
    const after = assignment(buildTable('maglev', [...FIVE, { name: 'up-5', weight: 1 }], OPTIONS), KEYS);
    const changed = moved(before, after);
    const toNew = changed.filter((i) => after[i] === 'up-5').length;
    expect(toNew / KEYS.length).toBeGreaterThan(1 / 6 - 0.04);
    expect((changed.length - toNew) / KEYS.length).toBeLessThan(0.03);
  });
});

describe('modulo disruption (the baseline consistent hashing improves on)', () => {
  it('moves most keys when a sixth member joins', () => {
    const before = assignment(buildTable('modulo', FIVE, OPTIONS), KEYS);
    const after = assignment(buildTable('modulo', [...FIVE, { name: 'up-5', weight: 1 }], OPTIONS), KEYS);
    expect(moved(before, after).length / KEYS.length).toBeGreaterThan(0.7);
  });
});

describe('ring weight change', () => {
  it('adds or removes only that member points (HAProxy lb_chash.c)', () => {
    const pointsOf = (weight: number): string[] => {
      const data = buildTableData('ring', FIVE.map((m) => (m.name === 'up-0' ? { ...m, weight } : m)), { vnodes: 10 });
      if (data.algorithm !== 'ring') throw new Error('not a ring');
      return Array.from(data.points, (p, i) => `${p}:${data.members[data.owners[i]!]!.name}`);
    };
    const light = pointsOf(1);
    const heavy = pointsOf(3);
    const extra = [...heavy];
    for (const p of light) extra.splice(extra.indexOf(p), 1); // throws off the count if p is missing
    expect(heavy.length - light.length).toBe(20);
    expect(extra).toHaveLength(20);
    for (const p of extra) expect(p.endsWith(':up-0')).toBe(true);
  });
});
