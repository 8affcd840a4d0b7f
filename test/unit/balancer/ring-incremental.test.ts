import { describe, expect, it } from 'vitest';
import { SpareBuffers } from '../../../src/balancer/arena.js';
import { xxh32String } from '../../../src/balancer/hash.js';
import { buildTableData, rebuildTableData, tableBuffers, type TableData } from '../../../src/balancer/index.js';
import type { RingData } from '../../../src/balancer/ring.js';
import { RingCache } from '../../../src/balancer/table-cache.js';
import type { Member } from '../../../src/balancer/types.js';
import { seededRandom } from './helpers.js';

/** The first index where two rings differ (points, owners or members), or null when they are identical. */
function difference(actual: TableData, expected: TableData): string | null {
  if (actual.algorithm !== 'ring' || expected.algorithm !== 'ring') return `algorithm ${actual.algorithm} / ${expected.algorithm}`;
  const names = (d: RingData): string => d.members.map((m) => `${m.name}*${m.weight}`).join(',');
  if (names(actual) !== names(expected)) return 'members differ';
  if (actual.points.length !== expected.points.length) return `length ${actual.points.length} != ${expected.points.length}`;
  for (let i = 0; i < expected.points.length; i++) {
    if (actual.points[i] !== expected.points[i] || actual.owners[i] !== expected.owners[i]) {
      return `at ${i}: (${actual.points[i]}, ${actual.owners[i]}) != (${expected.points[i]}, ${expected.owners[i]})`;
    }
  }
  return null;
}

interface Slot {
  readonly name: string;
  weight: number;
  drained: boolean;
}

/**
 * A random walk over a listener's upstreams, in the shapes the pool produces: the
 * members of a table are the routable upstreams in insertion order, so a drain or a
 * removal renumbers every member after it, an undrain puts one back in the middle.
 */
class Membership {
  readonly #random: () => number;
  #slots: Slot[] = [];
  readonly #gone: string[] = [];
  #next = 0;

  constructor(seed: number, initial: number) {
    this.#random = seededRandom(seed);
    for (let i = 0; i < initial; i++) this.#add();
  }

  members(): Member[] {
    return this.#slots.filter((s) => !s.drained).map((s) => ({ name: s.name, weight: s.weight }));
  }

  /** One step: usually one change, sometimes a batch (coalesced changes) or a mass change. */
  step(): string {
    const r = this.#random();
    if (r < 0.1) {
      const n = 2 + Math.floor(this.#random() * 20);
      for (let i = 0; i < n; i++) this.#one();
      return `batch of ${n}`;
    }
    if (r < 0.13) {
      // Most of the pool replaced at once (a redeploy): more than half the points are new.
      const keep = Math.floor(this.#slots.length / 4);
      this.#slots = this.#slots.slice(0, keep);
      for (let i = 0; i < 60; i++) this.#add();
      return 'mass replace';
    }
    if (r < 0.15) {
      // A zone lost: nearly every upstream down at once.
      this.#slots = this.#slots.slice(0, 3);
      return 'mass removal';
    }
    if (r < 0.17) {
      // A reload that lists the upstreams in another order.
      this.#slots.sort(() => this.#random() - 0.5);
      return 'reorder';
    }
    return this.#one();
  }

  #pick(filter: (s: Slot) => boolean): Slot | undefined {
    const candidates = this.#slots.filter(filter);
    return candidates[Math.floor(this.#random() * candidates.length)];
  }

  #one(): string {
    const size = this.#slots.length;
    let r = this.#random();
    // Keep the pool between ~10 and ~250 upstreams.
    if (size < 10) r = r * 0.3;
    else if (size > 250) r = 0.3 + r * 0.2;
    if (r < 0.3) return this.#add();
    if (r < 0.5) {
      const s = this.#pick(() => true);
      if (s === undefined) return 'nothing to remove';
      this.#slots.splice(this.#slots.indexOf(s), 1);
      this.#gone.push(s.name);
      return `remove ${s.name}`;
    }
    if (r < 0.65) {
      const s = this.#pick((x) => !x.drained);
      if (s !== undefined) s.drained = true;
      return `drain ${s?.name}`;
    }
    if (r < 0.8) {
      const s = this.#pick((x) => x.drained);
      if (s !== undefined) s.drained = false;
      return `undrain ${s?.name}`;
    }
    const s = this.#pick(() => true);
    if (s !== undefined) s.weight = 1 + Math.floor(this.#random() * 4);
    return `weight ${s?.name} ${s?.weight}`;
  }

  #add(): string {
    // Now and then a name comes back (removed, then added again, maybe reweighted).
    const back = this.#gone.length > 0 && this.#random() < 0.2;
    const name = back ? this.#gone.splice(Math.floor(this.#random() * this.#gone.length), 1)[0]! : `pod-${this.#next++}.svc`;
    this.#slots.push({ name, weight: 1 + Math.floor(this.#random() * 3), drained: false });
    return `add ${name}`;
  }
}

/**
 * Pairs of members whose points collide, found by brute force: of 320,000 points
 * (2,000 names x 160) about 12 pairs share a 32-bit value. A ring breaks such ties by
 * member name, and an incremental build must break them alike.
 */
function collidingPairs(): [string, string][] {
  const packed = new Float64Array(2000 * 160);
  for (let i = 0; i < 2000; i++) for (let j = 0; j < 160; j++) packed[i * 160 + j] = xxh32String(`t-${i}-${j}`, 0) * 4096 + i;
  packed.sort();
  const pairs: [string, string][] = [];
  for (let k = 1; k < packed.length; k++) {
    const [a, b] = [packed[k - 1]!, packed[k]!];
    if (Math.floor(a / 4096) === Math.floor(b / 4096) && a % 4096 !== b % 4096) pairs.push([`t-${a % 4096}`, `t-${b % 4096}`]);
  }
  return pairs;
}

/** Whether a ring holds two members on one point (a tie its order had to break). */
function hasTie(data: TableData): boolean {
  if (data.algorithm !== 'ring') return false;
  for (let i = 1; i < data.points.length; i++) if (data.points[i] === data.points[i - 1] && data.owners[i] !== data.owners[i - 1]) return true;
  return false;
}

describe('incremental ring builds', () => {
  it('after each of 600 random membership changes, derives the very ring a full build makes', () => {
    for (const [seed, vnodes, steps] of [
      [1, 40, 400],
      [2, 160, 200],
    ] as const) {
      const walk = new Membership(seed, 60);
      let previous: TableData = buildTableData('ring', walk.members(), { vnodes });
      let incremental = 0;
      let full = 0;
      for (let i = 0; i < steps; i++) {
        const change = walk.step();
        const members = walk.members();
        const built = rebuildTableData(previous, 'ring', members, { vnodes });
        expect(difference(built.data, buildTableData('ring', members, { vnodes })), `seed ${seed} step ${i}: ${change}`).toBeNull();
        if (built.incremental) incremental++;
        else full++;
        previous = built.data;
      }
      // Nearly every step is a small change; mass changes and empty pools fall back.
      expect(incremental, `seed ${seed}`).toBeGreaterThan(steps * 0.8);
      expect(full, `seed ${seed}`).toBeGreaterThan(3);
    }
  });

  it('as a worker thread runs it: its private copy outlives the output moved away, recycled and scribbled over', () => {
    const walk = new Membership(3, 80);
    const cache = new RingCache({ copy: true });
    const options = { vnodes: 100 };
    // What the routing thread holds: each output, moved (the builder's buffers are
    // detached, as postMessage leaves them), then retired one build later and sent
    // back as spare buffers to be written again.
    const held: TableData[] = [];
    for (let i = 0; i < 200; i++) {
      const change = walk.step();
      const members = walk.members();
      const retired = held.length >= 2 ? held.shift()! : null;
      const spare = retired === null ? [] : tableBuffers(retired);
      for (const b of spare) new Uint32Array(b).fill(0xdeadbeef);
      const built = cache.build('listener', 'ring', members, options, new SpareBuffers(spare));
      const moved = structuredClone(built.data, { transfer: tableBuffers(built.data) });
      expect(difference(moved, buildTableData('ring', members, options)), `step ${i}: ${change}`).toBeNull();
      held.push(moved);
    }
    expect(cache.counts.incremental).toBeGreaterThan(150);
  });

  it('breaks ties between members on one point by name, as a full build does, joining from either side', () => {
    const pairs = collidingPairs();
    expect(pairs.length).toBeGreaterThan(3);
    const filler = Array.from({ length: 8 }, (_, i) => ({ name: `f-${i}`, weight: 1 }));
    const options = { vnodes: 160 };
    for (const [a, b] of pairs) {
      for (const [stays, joins] of [
        [a, b],
        [b, a],
      ] as const) {
        // `stays` is in the previous ring; `joins` arrives (listed first, so every index moves).
        const before = [...filler, { name: stays, weight: 1 }];
        const after = [{ name: joins, weight: 1 }, ...filler, { name: stays, weight: 1 }];
        const expected = buildTableData('ring', after, options);
        expect(hasTie(expected)).toBe(true);
        const built = rebuildTableData(buildTableData('ring', before, options), 'ring', after, options);
        expect(built.incremental).toBe(true);
        expect(difference(built.data, expected), `${joins} joins ${stays}`).toBeNull();
        // And the tie survives one of the others leaving (kept run renumbered).
        const later = after.filter((m) => m.name !== 'f-3');
        const next = rebuildTableData(built.data, 'ring', later, options);
        expect(next.incremental).toBe(true);
        expect(difference(next.data, buildTableData('ring', later, options))).toBeNull();
      }
    }
  });

  it('builds whole where it cannot derive: no previous ring, other vnodes, Maglev, most points new, most dropped', () => {
    const m = (n: number, prefix = 'up-'): Member[] => Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, weight: 1 }));
    const base = buildTableData('ring', m(100), { vnodes: 50 });
    const cases: [string, TableData | null, 'ring' | 'maglev', Member[], number, boolean][] = [
      ['no previous ring', null, 'ring', m(100), 50, false],
      ['a previous Maglev table', buildTableData('maglev', m(100), { vnodes: 50 }), 'ring', m(101), 50, false],
      ['other vnodes', base, 'ring', m(101), 60, false],
      ['a Maglev table', base, 'maglev', m(101), 50, false],
      ['just half of the points new', base, 'ring', [...m(50), ...m(50, 'new-')], 50, true],
      ['more than half of the points new', base, 'ring', [...m(49), ...m(51, 'new-')], 50, false],
      ['a weight raised past half the ring', base, 'ring', [{ name: 'up-0', weight: 101 }, ...m(100).slice(1)], 50, false],
      ['4 x the new ring dropped', base, 'ring', m(20), 50, true],
      ['more than 4 x the new ring dropped', base, 'ring', m(19), 50, false],
      ['all members gone', base, 'ring', [], 50, false],
    ];
    for (const [label, previous, algorithm, members, vnodes, incremental] of cases) {
      const built = rebuildTableData(previous, algorithm, members, { vnodes });
      expect(built.incremental, label).toBe(incremental);
      expect(built.data, label).toEqual(buildTableData(algorithm, members, { vnodes }));
    }
  });

  it('validates like a full build, and a refused build leaves the remembered ring in place', () => {
    const cache = new RingCache({ copy: false });
    const members = [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 1 },
    ];
    cache.build('k', 'ring', members, { vnodes: 10 });
    expect(() => cache.build('k', 'ring', [...members, { name: 'a', weight: 2 }], { vnodes: 10 })).toThrow(/not unique/);
    expect(() => cache.build('k', 'ring', [{ name: 'c', weight: 0 }], { vnodes: 10 })).toThrow(/weight/);
    const next = cache.build('k', 'ring', [...members, { name: 'c', weight: 1 }], { vnodes: 10 });
    expect(next.incremental).toBe(true);
    expect(cache.counts).toEqual({ incremental: 1, full: 1 });
  });

  it('keeps one ring per series, forgets the least recently built past its point budget, and rings only', () => {
    const m = (n: number, prefix: string): Member[] => Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, weight: 1 }));
    // Room for two 100 x 10 rings, not three.
    const cache = new RingCache({ copy: true, maxPoints: 2500 });
    cache.build('a', 'ring', m(100, 'a'), { vnodes: 10 });
    cache.build('b', 'ring', m(100, 'b'), { vnodes: 10 });
    expect(cache.build('a', 'ring', m(101, 'a'), { vnodes: 10 }).incremental).toBe(true);
    expect(cache.build('b', 'ring', m(101, 'b'), { vnodes: 10 }).incremental).toBe(true);
    cache.build('c', 'ring', m(100, 'c'), { vnodes: 10 });
    // `a` was built longest ago: forgotten; `b` still there.
    expect(cache.build('b', 'ring', m(102, 'b'), { vnodes: 10 }).incremental).toBe(true);
    expect(cache.build('a', 'ring', m(102, 'a'), { vnodes: 10 }).incremental).toBe(false);
    // A series switched to Maglev forgets its ring; back to ring, the first build is whole.
    cache.build('b', 'maglev', m(102, 'b'), { vnodes: 10 });
    expect(cache.build('b', 'ring', m(103, 'b'), { vnodes: 10 }).incremental).toBe(false);
    // No key: nothing remembered.
    cache.build(undefined, 'ring', m(10, 'x'), { vnodes: 10 });
    expect(cache.build(undefined, 'ring', m(11, 'x'), { vnodes: 10 }).incremental).toBe(false);
  });
});
