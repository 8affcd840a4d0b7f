import { describe, expect, it } from 'vitest';
import { fmix32, xxh32String } from '../../../src/hashing/hash.js';
import { buildTable, buildTableData, tableFromData } from '../../../src/hashing/tables.js';
import type { LookupTable, Member, TableData } from '../../../src/hashing/types.js';
import { ALGORITHMS, CONSISTENT, OPTIONS, members, seededRandom, sequentialKeys, shuffled } from './helpers.js';

const KEYS = sequentialKeys(10_000);

function namesOf(table: LookupTable, indices: Uint32Array, count: number): string[] {
  return Array.from(indices.subarray(0, count), (i) => table.members[i]!.name);
}

describe.each(ALGORITHMS)('%s', (algorithm) => {
  it('maps every key to the same member name whatever the list order', () => {
    const random = seededRandom(11);
    const base = members(12).map((m, i) => ({ ...m, weight: 1 + (i % 3) }));
    const reference = buildTable(algorithm, base, OPTIONS);
    for (let round = 0; round < 3; round++) {
      const table = buildTable(algorithm, shuffled(base, random), OPTIONS);
      for (let k = 0; k < KEYS.length; k++) {
        const h = KEYS[k]!;
        expect(table.members[table.primary(h)]!.name).toBe(reference.members[reference.primary(h)]!.name);
      }
    }
  });

  it('builds identical data twice (same process, no hidden state)', () => {
    const a = buildTableData(algorithm, members(7), OPTIONS);
    const b = buildTableData(algorithm, members(7), OPTIONS);
    expect(b).toEqual(a);
  });

  it('answers the same after the data is transferred to another thread', () => {
    const data = buildTableData(algorithm, members(9), OPTIONS);
    const direct = tableFromData(data);
    const expected = Array.from(KEYS.subarray(0, 2000), (h) => direct.primary(h));
    const buffers = transferables(data);
    // structuredClone with a transfer list is what postMessage does to a worker's result.
    const moved = tableFromData(structuredClone(data, { transfer: buffers }));
    expect(Array.from(KEYS.subarray(0, 2000), (h) => moved.primary(h))).toEqual(expected);
  });

  it('answers -1 and writes nothing with no members', () => {
    const table = buildTable(algorithm, [], OPTIONS);
    const out = new Uint32Array(4);
    expect(table.size).toBe(0);
    expect(table.primary(12345)).toBe(-1);
    expect(table.order(12345, out)).toBe(0);
  });

  it('sends everything to a single member', () => {
    const table = buildTable(algorithm, members(1), OPTIONS);
    const out = new Uint32Array(3);
    for (const h of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff]) {
      expect(table.primary(h)).toBe(0);
      expect(table.order(h, out)).toBe(1);
      expect(out[0]).toBe(0);
    }
  });

  it('treats a negative int32 hash as the same uint32', () => {
    const table = buildTable(algorithm, members(5), OPTIONS);
    expect(table.primary(-1)).toBe(table.primary(0xffffffff));
    expect(table.primary(-2147483648)).toBe(table.primary(0x80000000));
  });

  it('order(): first is primary, all distinct, min(out.length, size) of them', () => {
    const table = buildTable(algorithm, members(8).map((m, i) => ({ ...m, weight: 1 + (i % 2) })), OPTIONS);
    for (const length of [0, 1, 3, 8, 12]) {
      const out = new Uint32Array(length);
      for (let k = 0; k < 500; k++) {
        const h = KEYS[k]!;
        const n = table.order(h, out);
        expect(n).toBe(Math.min(length, 8));
        if (n > 0) expect(out[0]).toBe(table.primary(h));
        expect(new Set(out.subarray(0, n)).size).toBe(n);
        for (const i of out.subarray(0, n)) expect(i).toBeLessThan(8);
      }
    }
  });

  it('order() does not depend on list order', () => {
    const base = members(6);
    const a = buildTable(algorithm, base, OPTIONS);
    const b = buildTable(algorithm, [...base].reverse(), OPTIONS);
    const outA = new Uint32Array(6);
    const outB = new Uint32Array(6);
    for (let k = 0; k < 500; k++) {
      a.order(KEYS[k]!, outA);
      b.order(KEYS[k]!, outB);
      expect(namesOf(b, outB, 6)).toEqual(namesOf(a, outA, 6));
    }
  });

  it('copies the member list, so later changes to the caller array do not leak in', () => {
    const list: Member[] = members(4);
    const table = buildTable(algorithm, list, OPTIONS);
    list.push({ name: 'late', weight: 1 });
    expect(table.size).toBe(4);
    expect(table.members.map((m) => m.name)).toEqual(['up-0', 'up-1', 'up-2', 'up-3']);
  });
});

describe.each(['ring', 'rendezvous'] as const)('%s fallback order', (algorithm) => {
  it('after removing a member equals the order before with that member left out', () => {
    const all = members(7);
    const before = buildTable(algorithm, all, OPTIONS);
    const outBefore = new Uint32Array(7);
    const outAfter = new Uint32Array(6);
    for (const removed of ['up-0', 'up-3', 'up-6']) {
      const after = buildTable(algorithm, all.filter((m) => m.name !== removed), OPTIONS);
      for (let k = 0; k < 2000; k++) {
        const h = KEYS[k]!;
        before.order(h, outBefore);
        after.order(h, outAfter);
        expect(namesOf(after, outAfter, 6)).toEqual(namesOf(before, outBefore, 7).filter((n) => n !== removed));
      }
    }
  });
});

describe.each(CONSISTENT)('%s with large membership', (algorithm) => {
  it('lists every member in order() for 300 members', () => {
    const table = buildTable(algorithm, members(300), { vnodes: 40 });
    const out = new Uint32Array(300);
    for (let k = 0; k < 20; k++) {
      expect(table.order(KEYS[k]!, out)).toBe(300);
      expect(new Set(out).size).toBe(300);
    }
  });
});

function transferables(data: TableData): ArrayBuffer[] {
  const arrays: Uint32Array[] | (Uint32Array | Float64Array)[] =
    data.algorithm === 'ring'
      ? [data.points, data.owners]
      : data.algorithm === 'maglev'
        ? [data.slots]
        : data.algorithm === 'rendezvous'
          ? [data.seeds, data.weights]
          : [data.order];
  return arrays.map((a) => a.buffer as ArrayBuffer);
}

describe('rendezvous order', () => {
  /** The definition, written out: score each member, sort descending, ties by name. */
  function reference(list: readonly Member[], hash: number): string[] {
    const uniform = list.every((m) => m.weight === list[0]!.weight);
    const scored = list.map((m) => {
      const s = fmix32(hash ^ xxh32String(m.name, 0x5eed));
      return { name: m.name, score: uniform ? s : -m.weight / Math.log((s + 0.5) / 2 ** 32) };
    });
    scored.sort((a, b) => b.score - a.score || (a.name < b.name ? -1 : 1));
    return scored.map((x) => x.name);
  }

  it.each([
    ['equal weights', members(40)],
    ['mixed weights', members(40).map((m, i) => ({ ...m, weight: 1 + ((i * 7) % 5) }))],
  ])('is the members sorted by score (%s)', (_label, list) => {
    const table = buildTable('rendezvous', list, OPTIONS);
    const out = new Uint32Array(40);
    const first5 = new Uint32Array(5);
    for (let k = 0; k < 300; k++) {
      const h = KEYS[k]!;
      const expected = reference(list, h);
      table.order(h, out);
      expect(namesOf(table, out, 40)).toEqual(expected);
      table.order(h, first5);
      expect(namesOf(table, first5, 5)).toEqual(expected.slice(0, 5));
      expect(table.members[table.primary(h)]!.name).toBe(expected[0]);
    }
  });
});
