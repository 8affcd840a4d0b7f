/**
 * Consistent hash ring (Karger et al., "Consistent Hashing and Random Trees",
 * STOC 1997) with virtual nodes.
 *
 * Each member owns `vnodes x weight` points on a 32-bit circle; a key belongs to
 * the owner of the first point at or after its hash. Point j of a member is
 * XXH32("<name>-<j>"), derived from the name and index only, as HAProxy's
 * lb_chash.c derives nodes from the server id: every process builds the same ring,
 * list order and addresses never matter, and changing a weight from w to w' adds or
 * removes only points w x vnodes .. w' x vnodes - 1 of that one member. (Names may
 * contain '-': the text after the last '-' is always the integer j, so distinct
 * (name, j) pairs give distinct strings.)
 *
 * A member's share is the sum of V arcs, each roughly exponential, so it deviates
 * from the mean by about 1/sqrt(V). Measured with 100,000 keys (native-bench/
 * hash-quality.mjs), the fullest member holds 1.17x the mean of 10 members and
 * 1.26x of 100 at 160 points (TETHER_VNODES), 1.07x and 1.10x at 1000.
 */
import { FRESH, type ArrayArena } from './arena.js';
import { xxh32String } from './hash.js';
import { indicesByName, nameRanks } from './members.js';
import type { LookupTable, Member, TableData } from './types.js';

export type RingData = Extract<TableData, { algorithm: 'ring' }>;

export interface RingOptions {
  /** Points per unit of weight. */
  readonly vnodes: number;
}

/**
 * Builds the sorted point array and its owners. Points that collide (about 75 pairs
 * expected among 800,000 32-bit values) are ordered by member name, so every
 * process resolves them alike; a lookup lands on the first of them.
 */
export function buildRing(members: readonly Member[], options: RingOptions, arena: ArrayArena = FRESH): RingData {
  const n = members.length;
  const byName = indicesByName(members);
  const rank = nameRanks(byName);

  let total = 0;
  for (let i = 0; i < n; i++) total += options.vnodes * members[i]!.weight;

  // Sort (point, rank) pairs as one number: point x 2^bits + rank. A point is below
  // 2^32 and rank below 2^bits, so the product stays under 2^53 (exact) while
  // bits <= 21, and the typed-array sort is numeric and needs no comparator: 800k
  // points (5000 members x 160) sort in ~65 ms, against ~180-210 ms for an index
  // array sorted with a (point, rank) comparator (Node 20, x86-64).
  let bits = 0;
  while (1 << bits < n) bits++;
  const scale = 2 ** bits;
  const packed = new Float64Array(total);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const m = members[i]!;
    const count = options.vnodes * m.weight;
    const r = rank[i]!;
    for (let j = 0; j < count; j++) packed[k++] = xxh32String(`${m.name}-${j}`, 0) * scale + r;
  }
  packed.sort();

  const points = arena.uint32(total);
  const owners = arena.uint32(total);
  for (let p = 0; p < total; p++) {
    const v = packed[p]!;
    const point = Math.floor(v / scale);
    points[p] = point;
    owners[p] = byName[v - point * scale]!;
  }
  return { algorithm: 'ring', members, points, owners };
}

/** Most members a ring can rank inside the packed sort key (see buildRing). */
export const RING_MAX_MEMBERS = 1 << 21;

/**
 * The same ring buildRing(members) builds, derived from `previous` (a ring of another
 * membership at the same vnodes) in work proportional to the change: a ring is the
 * sorted merge of each member's points, so it keeps the points of members whose name
 * and weight are unchanged (one linear pass, owners renumbered to `members`), hashes
 * and sorts only the points of members that are new or reweighted, and merges the two
 * sorted runs. Equal points are ordered by member name, as buildRing orders them, so
 * the result is identical to a full build, array for array.
 *
 * Returns null when the full build is the better deal or `previous` does not fit:
 * more than half of the new ring's points would be new, or the points dropped are
 * more than 4 x the new ring (a full build costs ~25 ns a point to hash and sort,
 * the scan ~4 ns a point of the old ring, Node 20 x86-64), or `previous` was built
 * with another vnodes.
 */
export function updateRing(previous: RingData, members: readonly Member[], options: RingOptions, arena: ArrayArena = FRESH): RingData | null {
  const vnodes = options.vnodes;
  const before = previous.members;
  let beforeWeight = 0;
  for (let i = 0; i < before.length; i++) beforeWeight += before[i]!.weight;
  // points.length is vnodes x total weight: a ring of another vnodes does not fit.
  if (previous.points.length !== vnodes * beforeWeight) return null;

  const n = members.length;
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) index.set(members[i]!.name, i);

  // renumber[old index] = new index of a member whose points all carry over, else -1.
  const renumber = new Int32Array(before.length);
  const kept = new Uint8Array(n);
  let droppedPoints = 0;
  for (let i = 0; i < before.length; i++) {
    const m = before[i]!;
    const j = index.get(m.name);
    if (j !== undefined && members[j]!.weight === m.weight) {
      renumber[i] = j;
      kept[j] = 1;
    } else {
      renumber[i] = -1;
      droppedPoints += vnodes * m.weight;
    }
  }

  // Members whose points must be hashed: new ones, and reweighted ones (all their
  // points, not only the difference: simpler, and a reweight is one member's work).
  const fresh: number[] = [];
  let total = 0;
  let freshPoints = 0;
  for (let i = 0; i < n; i++) {
    const count = vnodes * members[i]!.weight;
    total += count;
    if (kept[i] === 0) {
      fresh.push(i);
      freshPoints += count;
    }
  }
  if (freshPoints * 2 > total || droppedPoints > 4 * total) return null;

  // The fresh points, sorted by (point, name) with the packed key of buildRing, over
  // the fresh members' own name ranks.
  fresh.sort((a, b) => (members[a]!.name < members[b]!.name ? -1 : 1));
  let bits = 0;
  while (1 << bits < fresh.length) bits++;
  const scale = 2 ** bits;
  const packed = new Float64Array(freshPoints);
  let k = 0;
  for (let r = 0; r < fresh.length; r++) {
    const m = members[fresh[r]!]!;
    const count = vnodes * m.weight;
    for (let j = 0; j < count; j++) packed[k++] = xxh32String(`${m.name}-${j}`, 0) * scale + r;
  }
  packed.sort();

  // Merge the kept run (already in (point, name) order) with the fresh one. A fresh
  // point goes first when it is lower, or equal and its owner's name is lower; the
  // two runs never share an owner.
  const points = arena.uint32(total);
  const owners = arena.uint32(total);
  const oldPoints = previous.points;
  const oldOwners = previous.owners;
  let out = 0;
  let f = 0;
  let freshPoint = f < freshPoints ? Math.floor(packed[0]! / scale) : 2 ** 32;
  for (let p = 0; p < oldPoints.length; p++) {
    const owner = renumber[oldOwners[p]!]!;
    if (owner < 0) continue;
    const point = oldPoints[p]!;
    while (freshPoint < point || (freshPoint === point && members[fresh[packed[f]! - freshPoint * scale]!]!.name < members[owner]!.name)) {
      points[out] = freshPoint;
      owners[out++] = fresh[packed[f]! - freshPoint * scale]!;
      freshPoint = ++f < freshPoints ? Math.floor(packed[f]! / scale) : 2 ** 32;
    }
    points[out] = point;
    owners[out++] = owner;
  }
  for (; f < freshPoints; f++) {
    const v = packed[f]!;
    const point = Math.floor(v / scale);
    points[out] = point;
    owners[out++] = fresh[v - point * scale]!;
  }
  return { algorithm: 'ring', members, points, owners };
}

export class RingTable implements LookupTable {
  readonly algorithm = 'ring' as const;
  readonly size: number;
  readonly members: readonly Member[];
  readonly #points: Uint32Array;
  readonly #owners: Uint32Array;
  /**
   * seen[m] === epoch marks member m as already emitted by the current order() call.
   * Bumping the epoch clears the whole array in O(1), so order() neither allocates
   * nor fills anything per call.
   */
  readonly #seen: Uint32Array;
  #epoch = 0;

  constructor(data: RingData) {
    this.members = data.members;
    this.size = data.members.length;
    this.#points = data.points;
    this.#owners = data.owners;
    this.#seen = new Uint32Array(this.size);
  }

  /** Position of the first point >= hash, wrapping to 0 past the last point. */
  #find(hash: number): number {
    const points = this.#points;
    const h = hash >>> 0;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === points.length ? 0 : lo;
  }

  primary(hash: number): number {
    if (this.size === 0) return -1;
    return this.#owners[this.#find(hash)]!;
  }

  /**
   * Distinct owners met walking clockwise from the key's point, at most one turn.
   * Removing a member X leaves every other point in place, so the order after the
   * removal is the order before with X left out: a retry goes where the key would
   * go if X were gone (HAProxy chash_get_server_hash walks the same way).
   */
  order(hash: number, out: Uint32Array, limit = out.length): number {
    const want = Math.min(limit, out.length, this.size);
    if (want === 0) return 0;
    const points = this.#points.length;
    const owners = this.#owners;
    const seen = this.#seen;
    let epoch = this.#epoch + 1;
    if (epoch > 0xffffffff) {
      seen.fill(0);
      epoch = 1;
    }
    this.#epoch = epoch;

    let p = this.#find(hash);
    let count = 0;
    for (let step = 0; step < points && count < want; step++) {
      const owner = owners[p]!;
      if (seen[owner] !== epoch) {
        seen[owner] = epoch;
        out[count++] = owner;
      }
      if (++p === points) p = 0;
    }
    return count;
  }
}
