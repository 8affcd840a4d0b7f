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
import { xxh32String } from '../hash.js';
import { indicesByName } from '../members.js';
import { pace } from '../pace.js';
import { lowerBound, planRingPatch, type RingChange, type RingPatch } from './patch.js';
import type { Member, RingData } from '../types.js';


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

  let total = 0;
  for (let i = 0; i < n; i++) total += options.vnodes * members[i]!.weight;
  const { packed, scale } = sortedPoints(n, total, options.vnodes, (rank) => members[byName[rank]!]!);

  const points = arena.uint32(total);
  const owners = arena.uint32(total);
  for (let p = 0; p < total; p++) {
    if ((p & PACE_EVERY) === 0) pace();
    const v = packed[p]!;
    const point = Math.floor(v / scale);
    points[p] = point;
    owners[p] = byName[v - point * scale]!;
  }
  return { algorithm: 'ring', members, points, owners };
}

/**
 * The points of `count` members, member r (in name order) being `memberOfRank(r)`,
 * sorted in (point, name) order: each packed as one number, point x 2^bits + r. A
 * point is below 2^32 and r below 2^bits, so the value stays under 2^53 (exact)
 * while bits <= 21 (RING_MAX_MEMBERS), and the typed-array sort is numeric and needs
 * no comparator: 800k points (5000 members x 160) sort in ~65 ms, against ~180-210
 * ms for an index array sorted with a (point, rank) comparator (Node 20, x86-64).
 * `total` is the number of points; unpack with Math.floor(value / scale).
 */
function sortedPoints(count: number, total: number, vnodes: number, memberOfRank: (rank: number) => Member): { packed: Float64Array; scale: number } {
  let bits = 0;
  while (1 << bits < count) bits++;
  const scale = 2 ** bits;
  const packed = new Float64Array(total);
  let k = 0;
  for (let r = 0; r < count; r++) {
    const m = memberOfRank(r);
    const points = vnodes * m.weight;
    for (let j = 0; j < points; j++) packed[k++] = xxh32String(`${m.name}-${j}`, 0) * scale + r;
    pace();
  }
  // One native call: the one stretch of a build no pacer can cut (~65 ms at 800k points).
  packed.sort();
  return { packed, scale };
}

/** Loops over points call pace() (hashing/pace.ts) every PACE_EVERY + 1 points (~0.05-0.1 ms of work). */
const PACE_EVERY = 0x3fff;

/** Most members a ring can rank inside the packed sort key (see buildRing). */
export const RING_MAX_MEMBERS = 1 << 21;

/**
 * The same ring buildRing(members) builds, derived from `previous` (a ring of another
 * membership at the same vnodes) in work proportional to the change. A ring is the
 * sorted merge of each member's points: the points of a member whose name and weight
 * are unchanged carry over (its index may differ), those of new and reweighted members
 * are hashed and sorted, those of members gone or reweighted are dropped. Equal points
 * are ordered by member name, as buildRing orders them, so the result is identical to
 * a full build, array for array. Two ways, by the size of the change (`way`, for
 * tests, forces one; a patch that cannot be made then answers null):
 *
 * - patch (ring/patch.ts): few members leave, join, change weight or move to another
 *   index, as after one change in the pool's stable order (routing/routable-view.ts). Their
 *   entries are found by binary search of their point hashes and the rest of the ring
 *   is copied around them in bulk (memmove speed): the cost is their points and a
 *   copy of the arrays, not a pass of JavaScript over every point. The edits come
 *   back too, for RingCache to replay on its own copy of `previous`.
 * - merge (mergeRing): many members renumbered (a reload in another order, several
 *   threads each missing builds of a series). One pass over the old ring keeps and
 *   renumbers the points that carry over, merging in the sorted new ones.
 *
 * Returns null when the full build is the better deal or `previous` does not fit:
 * more than half of the new ring's points would be new, or the points dropped are
 * more than 4 x the new ring (a full build costs ~25 ns a point to hash and sort,
 * the scan ~4 ns a point of the old ring, Node 20 x86-64), or `previous` was built
 * with another vnodes; and when a name in `members` repeats (checked here against
 * the previous ring's names, so callers need not collect every name in a set).
 */
export function updateRing(
  previous: RingData,
  members: readonly Member[],
  options: RingOptions,
  arena: ArrayArena = FRESH,
  way: 'auto' | 'patch' | 'merge' = 'auto',
): RingUpdate | null {
  const vnodes = options.vnodes;
  const before = previous.members;
  let beforeWeight = 0;
  for (let i = 0; i < before.length; i++) beforeWeight += before[i]!.weight;
  // points.length is vnodes x total weight: a ring of another vnodes does not fit.
  if (previous.points.length !== vnodes * beforeWeight) return null;

  const change = compareMembers(previous, members, vnodes);
  if (change === null) return null;
  const touched = change.droppedPoints + change.movedPoints + change.fresh.length;
  if (way === 'patch' || (way === 'auto' && touched * PATCH_RATIO <= previous.points.length)) {
    const patch = planRingPatch(previous, members, change, vnodes);
    if (patch !== null) return { data: patch.apply(previous, members, arena), patch };
    if (way === 'patch') return null;
  }
  return { data: mergeRing(previous, members, change, arena), patch: null };
}

/** A ring derived from the previous one, and the edits that made it when it was patched. */
export interface RingUpdate {
  readonly data: RingData;
  /** Replays the same edits on another copy of the previous ring (RingCache); null after a merge. */
  readonly patch: RingPatch | null;
}

/**
 * The patch is taken while the entries it must find and place (those of members that
 * leave, join, change weight or move) are at most 1/PATCH_RATIO of the old ring. Each
 * costs ~0.3-0.45 us (a hash, a binary search, the bulk copies of the stretch before
 * it, into the new ring and in the worker's own copy) on top of ~1 ns a point for the
 * copies themselves; the merge costs ~3.4 ns a point, its copy included. They cross
 * near one entry in 200 at 1,000 and at 5,000 upstreams x 160 (one drain = 320
 * entries: the member's and those of the member moved into its index); below ~300
 * upstreams the merge wins anyway (Node 20, x86-64, both ways timed over 1-12
 * coalesced drains).
 */
const PATCH_RATIO = 200;

/**
 * Pairs old and new members by name. Most members keep their index (the pool keeps
 * its order stable), so names are compared position by position first and only the
 * positions that differ are looked up by name: no map of every member per build.
 * Then hashes and sorts the points of fresh members (new and reweighted: all their
 * points, not only the difference; simpler, and a reweight is one member's work) with
 * sortedPoints, over the fresh members' own name ranks. Null when a
 * full build is the better deal (see updateRing), or a name is repeated.
 */
function compareMembers(previous: RingData, members: readonly Member[], vnodes: number): RingChange | null {
  const before = previous.members;
  const m = before.length;
  const n = members.length;
  const renumber = new Int32Array(m).fill(-1);
  const kept = new Uint8Array(n);
  const common = Math.min(m, n);
  const unmatched: number[] = [];
  // New names at positions whose old name differs, and which of them are old names.
  const byName = new Map<string, number>();
  const paired = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = members[i]!;
    if (i < common) {
      const a = before[i]!;
      if (a.name === b.name) {
        if (a.weight === b.weight) {
          renumber[i] = i;
          kept[i] = 1;
        }
        continue;
      }
      unmatched.push(i);
    }
    if (byName.has(b.name)) return null;
    byName.set(b.name, i);
  }
  for (let i = common; i < m; i++) unmatched.push(i);
  let movedPoints = 0;
  for (const i of unmatched) {
    const a = before[i]!;
    const j = byName.get(a.name);
    if (j === undefined) continue;
    paired[j] = 1;
    if (members[j]!.weight === a.weight) {
      renumber[i] = j;
      kept[j] = 1;
      movedPoints += vnodes * a.weight;
    }
  }
  // The old names are unique (validated when `previous` was built) and so are the new
  // names just mapped. A repeat can only be a mapped name that is not new at all but an
  // old one kept at its index: its point 0 is then in the old ring under that name.
  for (const j of byName.values()) if (paired[j] === 0 && inRing(previous, members[j]!.name)) return null;
  let droppedPoints = 0;
  for (let i = 0; i < m; i++) if (renumber[i]! < 0) droppedPoints += vnodes * before[i]!.weight;

  const freshOwners: number[] = [];
  let total = 0;
  let freshPoints = 0;
  for (let i = 0; i < n; i++) {
    const count = vnodes * members[i]!.weight;
    total += count;
    if (kept[i] === 0) {
      freshOwners.push(i);
      freshPoints += count;
    }
  }
  if (freshPoints * 2 > total || droppedPoints > 4 * total) return null;

  freshOwners.sort((a, b) => (members[a]!.name < members[b]!.name ? -1 : 1));
  const { packed: fresh, scale } = sortedPoints(freshOwners.length, freshPoints, vnodes, (rank) => members[freshOwners[rank]!]!);
  return { renumber, total, droppedPoints, movedPoints, fresh, scale, freshOwners };
}

/** Whether a member named `name` is in the ring: its point 0 is there, under that name. */
function inRing(ring: RingData, name: string): boolean {
  const point = xxh32String(`${name}-0`, 0);
  const { points, owners, members } = ring;
  for (let at = lowerBound(points, point, 0); at < points.length && points[at] === point; at++) {
    if (members[owners[at]!]!.name === name) return true;
  }
  return false;
}

/**
 * One pass over the old ring: the points that carry over, renumbered, merged with the
 * sorted fresh ones. A fresh point goes first when it is lower, or equal and its
 * owner's name is lower; the two runs never share an owner.
 */
function mergeRing(previous: RingData, members: readonly Member[], change: RingChange, arena: ArrayArena): RingData {
  const { renumber, fresh, scale, freshOwners } = change;
  const freshPoints = fresh.length;
  const points = arena.uint32(change.total);
  const owners = arena.uint32(change.total);
  const oldPoints = previous.points;
  const oldOwners = previous.owners;
  let out = 0;
  let f = 0;
  let freshPoint = f < freshPoints ? Math.floor(fresh[0]! / scale) : 2 ** 32;
  for (let p = 0; p < oldPoints.length; p++) {
    if ((p & PACE_EVERY) === 0) pace();
    const owner = renumber[oldOwners[p]!]!;
    if (owner < 0) continue;
    const point = oldPoints[p]!;
    while (freshPoint < point || (freshPoint === point && members[freshOwners[fresh[f]! - freshPoint * scale]!]!.name < members[owner]!.name)) {
      points[out] = freshPoint;
      owners[out++] = freshOwners[fresh[f]! - freshPoint * scale]!;
      freshPoint = ++f < freshPoints ? Math.floor(fresh[f]! / scale) : 2 ** 32;
    }
    points[out] = point;
    owners[out++] = owner;
  }
  for (; f < freshPoints; f++) {
    const v = fresh[f]!;
    const point = Math.floor(v / scale);
    points[out] = point;
    owners[out++] = freshOwners[v - point * scale]!;
  }
  return { algorithm: 'ring', members, points, owners };
}
