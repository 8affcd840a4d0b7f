import { describe, expect, it } from 'vitest';
import { FRESH, SpareBuffers } from '../../../../src/hashing/ring/arena.js';
import { xxh32String } from '../../../../src/hashing/hash.js';
import { buildTableData, rebuildTableData, tableBuffers, type TableData } from '../../../../src/hashing/tables.js';
import { updateRing } from '../../../../src/hashing/ring/build.js';
import type { Member, RingData } from '../../../../src/hashing/types.js';
import { RingCache } from '../../../../src/hashing/ring/cache.js';
import { RoutableView } from '../../../../src/routing/routable-view.js';
import { seededRandom } from '../helpers.js';

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
  readonly #max: number;

  readonly #mass: boolean;

  /**
   * Starts with `initial` upstreams; single changes keep the pool between ~10 and
   * ~`max`; `mass`: now and then most of the pool replaced or removed at once.
   */
  constructor(seed: number, initial: number, { max = 250, mass = true }: { max?: number; mass?: boolean } = {}) {
    this.#random = seededRandom(seed);
    this.#max = max;
    this.#mass = mass;
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
    if (!this.#mass && r < 0.15) return this.#one();
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
    // Keep the pool between ~10 and ~max upstreams.
    if (size < 10) r = r * 0.3;
    else if (size > this.#max) r = 0.3 + r * 0.2;
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

/**
 * The order the pool hands members to the builder (routing/routable-view.ts): members
 * that left swap-removed, new ones appended.
 */
class PoolOrder {
  readonly #view = new RoutableView<{ readonly name: string; slot: number; active: number; weight: number }>();
  readonly #byName = new Map<string, { readonly name: string; slot: number; active: number; weight: number }>();

  /** `members` (any order) in the view's order, after the view follows them. */
  next(members: readonly Member[]): Member[] {
    const wanted = new Map(members.map((m) => [m.name, m]));
    for (const entry of this.#view.snapshot()) {
      if (wanted.has(entry.name)) continue;
      this.#view.leave(entry);
      this.#byName.delete(entry.name);
    }
    for (const m of members) {
      const entry = this.#byName.get(m.name);
      if (entry === undefined) {
        const fresh = { name: m.name, slot: -1, active: 0, weight: m.weight };
        this.#byName.set(m.name, fresh);
        this.#view.join(fresh);
      } else if (entry.weight !== m.weight) {
        entry.weight = m.weight;
        this.#view.reweigh(entry);
      }
    }
    return this.#view.members.map((entry) => wanted.get(entry.name)!);
  }
}

/** A copy of a ring in buffers with room to grow, as RingCache keeps one. */
function roomyCopy(ring: RingData, room = 1024): RingData {
  const copy = (a: Uint32Array): Uint32Array => {
    const out = new Uint32Array(new ArrayBuffer((a.length + room) * 4), 0, a.length);
    out.set(a);
    return out;
  };
  return { algorithm: 'ring', members: ring.members, points: copy(ring.points), owners: copy(ring.owners) };
}

type Way = 'patch' | 'merge' | 'full';

/**
 * Derives the ring of `members` from `previous` every way there is, each checked
 * against a full build: as rebuildTableData picks, patched and merged by force, and a
 * patch replayed in place on a copy of `previous` (what a worker's RingCache does).
 * Returns the ring rebuildTableData made and the way it took.
 */
function everyWay(previous: RingData, members: readonly Member[], vnodes: number, label: string): { data: RingData; way: Way } {
  const options = { vnodes };
  const expected = buildTableData('ring', members, options) as RingData;
  const auto = rebuildTableData(previous, 'ring', members, options);
  expect(difference(auto.data, expected), `${label}: as picked`).toBeNull();
  for (const way of ['patch', 'merge'] as const) {
    const update = updateRing(previous, members, options, FRESH, way);
    // Both ways derive exactly when rebuildTableData does (the same checks refuse).
    expect(update !== null, `${label}: ${way} derives`).toBe(auto.incremental);
    if (update === null) continue;
    expect(difference(update.data, expected), `${label}: ${way}`).toBeNull();
    expect(update.patch !== null, `${label}: ${way} patch`).toBe(way === 'patch');
    if (update.patch !== null) {
      const edited = update.patch.applyInPlace(roomyCopy(previous, Math.max(0, expected.points.length - previous.points.length)), members);
      expect(edited, `${label}: patch in place`).not.toBeNull();
      expect(difference(edited!, expected), `${label}: patch in place`).toBeNull();
    }
  }
  const way: Way = !auto.incremental ? 'full' : auto.patch ? 'patch' : 'merge';
  return { data: auto.data as RingData, way };
}

/** A member whose own points collide (two of its j give one point): likely at weight 256 x 160 points. */
function selfColliding(vnodes: number, weight: number): string {
  for (let i = 0; i < 200; i++) {
    const name = `self-${i}`;
    const seen = new Set<number>();
    for (let j = 0; j < vnodes * weight; j++) {
      const point = xxh32String(`${name}-${j}`, 0);
      if (seen.has(point)) return name;
      seen.add(point);
    }
  }
  throw new Error('no self-colliding member found');
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

  it('in the order the pool sends (swap-remove, append), patched, merged and patched in place alike, after each random change', () => {
    // 60-250 upstreams x 40 points: rebuildTableData merges most one-member changes
    // (the patch pays below ~300 upstreams), so the patch is forced here. 1,000 x 40:
    // it patches them itself.
    for (const [seed, vnodes, initial, mass, steps] of [
      [4, 40, 60, true, 300],
      [5, 40, 1000, false, 60],
    ] as const) {
      const walk = new Membership(seed, initial, { max: initial + 100, mass });
      const order = new PoolOrder();
      let previous = buildTableData('ring', order.next(walk.members()), { vnodes }) as RingData;
      const ways: Record<Way, number> = { patch: 0, merge: 0, full: 0 };
      for (let i = 0; i < steps; i++) {
        const change = walk.step();
        const built = everyWay(previous, order.next(walk.members()), vnodes, `seed ${seed} step ${i}: ${change}`);
        ways[built.way]++;
        previous = built.data;
      }
      if (mass) expect(ways.full, `seed ${seed}`).toBeGreaterThan(0);
      else expect(ways.patch, `seed ${seed}`).toBeGreaterThan(steps * 0.6);
    }
  });

  it('patches the edge cases of a change alike: last member, hole filler gone too, weights, coalesced changes, colliding points', () => {
    const vnodes = 160;
    const m = (name: string, weight = 1): Member => ({ name, weight });
    const base = Array.from({ length: 12 }, (_, i) => m(`f-${i}`));
    const [a, b] = collidingPairs()[0]!;
    const self = selfColliding(vnodes, 256);
    // Room for a member of 256 x 160 points to join or leave without a full build.
    const heavy = [...base, m('heavy', 256)];
    const cases: [string, Member[], Member[]][] = [
      ['the last member leaves (nothing moves)', base, base.slice(0, -1)],
      ['the first member leaves, the last takes its index', base, [base[11]!, ...base.slice(1, 11)]],
      ['the member that would fill the hole leaves too', base, [...base.slice(0, 3), base[10]!, ...base.slice(4, 10)]],
      ['a member joins at the end', base, [...base, m('new')]],
      ['a member leaves and one joins (coalesced)', base, [base[11]!, ...base.slice(1, 11), m('new')]],
      ['a weight raised in place', base, base.map((x, i) => (i === 5 ? m(x.name, 3) : x))],
      ['a weight lowered in place', base.map((x, i) => (i === 5 ? m(x.name, 3) : x)), base],
      ['a member reweighted and moved', base, [m(base[11]!.name, 2), ...base.slice(1, 11)]],
      ['two leave, one joins, one reweighted', base, [base[10]!, base[1]!, m(base[2]!.name, 2), ...base.slice(3, 9), base[11]!, m('new')]],
      ['every member but two replaced: built whole', base, [base[0]!, base[1]!, ...Array.from({ length: 10 }, (_, i) => m(`g-${i}`))]],
      ['colliding: one of the pair leaves', [...base, m(a), m(b)], [...base, m(a)]],
      ['colliding: the other leaves, the first moves', [...base, m(a), m(b)], [...base.slice(0, 4), m(b), ...base.slice(5), m(a)]],
      ['colliding: one joins the other', [...base, m(b)], [...base, m(b), m(a)]],
      ['colliding: one reweighted', [...base, m(a), m(b)], [...base, m(a, 2), m(b)]],
      ['colliding: both move', [...base, m(a), m(b)], [m(b), ...base.slice(1, 11), m(a)]],
      ['a member whose own points collide leaves', [...heavy, m(self, 256)], heavy],
      ['a member whose own points collide moves', [...heavy, m(self, 256)], [m(self, 256), ...heavy.slice(1)]],
      ['a member whose own points collide joins', heavy, [...heavy, m(self, 256)]],
    ];
    const ways: Way[] = [];
    for (const [label, before, after] of cases) {
      const previous = buildTableData('ring', before, { vnodes }) as RingData;
      ways.push(everyWay(previous, after, vnodes, label).way);
    }
    // The colliding cases do put two members on one point.
    expect(hasTie(buildTableData('ring', [...base, m(a), m(b)], { vnodes }))).toBe(true);
    expect(ways.filter((w) => w === 'full')).toHaveLength(1);
  });

  it('replays a patch in place only where the copy has room, and leaves a copy without room as it was', () => {
    const options = { vnodes: 40 };
    const before = Array.from({ length: 20 }, (_, i) => ({ name: `up-${i}`, weight: 1 }));
    const previous = buildTableData('ring', before, options) as RingData;
    const update = updateRing(previous, [...before, { name: 'up-20', weight: 1 }], options, FRESH, 'patch')!;
    const tight = roomyCopy(previous, 39);
    const points = tight.points.slice();
    expect(update.patch!.applyInPlace(tight, update.data.members)).toBeNull();
    expect(tight.points).toEqual(points);
    expect(difference(update.patch!.applyInPlace(roomyCopy(previous, 40), update.data.members)!, update.data)).toBeNull();
  });

  it('refuses a repeated name with the very error a full build gives, wherever the repeat sits', () => {
    const options = { vnodes: 20 };
    const before = Array.from({ length: 10 }, (_, i) => ({ name: `up-${i}`, weight: 1 }));
    const previous = buildTableData('ring', before, options);
    const cases: [string, Member[]][] = [
      ['a new entry repeats a member kept at its index', [...before, { name: 'up-3', weight: 1 }]],
      ['a new entry repeats one kept at its index, with another weight', [...before, { name: 'up-3', weight: 2 }]],
      ['two new entries share a name', [...before, { name: 'x', weight: 1 }, { name: 'x', weight: 1 }]],
      ['a member moved, and repeated', [before[9]!, ...before.slice(1, 9), { name: 'up-9', weight: 1 }]],
      ['a repeat and a bad weight after it', [...before, { name: 'up-0', weight: 1 }, { name: 'y', weight: 0 }]],
      ['a bad weight and a repeat after it', [{ name: 'up-0', weight: 0 }, ...before.slice(1), { name: 'up-1', weight: 1 }]],
    ];
    for (const [label, members] of cases) {
      let expected = '';
      try {
        buildTableData('ring', members, options);
      } catch (err) {
        expected = (err as Error).message;
      }
      expect(expected, label).not.toBe('');
      expect(() => rebuildTableData(previous, 'ring', members, options), label).toThrow(expected);
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

  it('as a worker thread runs it in the pool\'s order: patches, and its copy edited in place serves every next build', () => {
    const walk = new Membership(6, 1000, { max: 1100, mass: false });
    const order = new PoolOrder();
    const cache = new RingCache({ copy: true });
    const options = { vnodes: 40 };
    const held: TableData[] = [];
    let patched = 0;
    for (let i = 0; i < 80; i++) {
      const change = walk.step();
      const members = order.next(walk.members());
      const retired = held.length >= 2 ? held.shift()! : null;
      const spare = retired === null ? [] : tableBuffers(retired);
      for (const b of spare) new Uint32Array(b).fill(0xdeadbeef);
      const built = cache.build('listener', 'ring', members, options, new SpareBuffers(spare));
      if (built.patch) patched++;
      const moved = structuredClone(built.data, { transfer: tableBuffers(built.data) });
      expect(difference(moved, buildTableData('ring', members, options)), `step ${i}: ${change}`).toBeNull();
      held.push(moved);
    }
    // The next build after a patch derives from the copy edited in place, and is checked.
    expect(patched).toBeGreaterThan(40);
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
