/**
 * A ring edited rather than rebuilt: when few members leave, join, change weight or
 * move to another index, their entries are found by binary search of their point
 * hashes, and the rest of the ring, untouched, is copied around them in bulk
 * (TypedArray set/copyWithin: memmove speed, ~0.1-0.2 ms for the 3.2 MB of points of a
 * 5,000 x 160 ring, Node 20 x86-64) instead of passing over every point in JavaScript.
 *
 * The edits are found once (planRingPatch) and can be replayed: into new arrays (the
 * table handed out), and in place on another copy of the old ring (the private copy a
 * worker thread keeps, hashing/ring/cache.ts).
 */
import { xxh32String } from '../hash.js';
import type { ArrayArena } from './arena.js';
import { pace } from '../pace.js';
import type { Member, RingData } from '../types.js';

/** What changed between a ring's members and the next membership, as ring/build.ts updateRing finds it. */
export interface RingChange {
  /** renumber[old index] = new index of a member whose points carry over, else -1 (gone or reweighted). */
  readonly renumber: Int32Array;
  /** Points of the new ring. */
  readonly total: number;
  /** Points of members dropped (gone or reweighted) and of members carried over to another index. */
  readonly droppedPoints: number;
  readonly movedPoints: number;
  /** Points of new and reweighted members, sorted by (point, name), packed as point x scale + rank in freshOwners. */
  readonly fresh: Float64Array;
  readonly scale: number;
  /** freshOwners[rank] = new index of a fresh member. */
  readonly freshOwners: readonly number[];
}

/**
 * The edits, in old-ring positions: entries to drop or relabel (the points of members
 * that leave or move), and entries to insert, each before the old entry at its
 * position.
 */
export class RingPatch {
  readonly #oldLength: number;
  readonly #total: number;
  /** Old positions touched, ascending, and the new owner of each, -1 to drop it. */
  readonly #touchedAt: Uint32Array;
  readonly #touchedTo: Int32Array;
  /** Entries to insert, in ring order: before old entry insertAt[f], or kept entry keptAt[f] once drops are gone. */
  readonly #insertAt: Uint32Array;
  readonly #keptAt: Uint32Array;
  readonly #insertPoints: Uint32Array;
  readonly #insertOwners: Uint32Array;

  constructor(
    oldLength: number,
    total: number,
    touchedAt: Uint32Array,
    touchedTo: Int32Array,
    insertAt: Uint32Array,
    keptAt: Uint32Array,
    insertPoints: Uint32Array,
    insertOwners: Uint32Array,
  ) {
    this.#oldLength = oldLength;
    this.#total = total;
    this.#touchedAt = touchedAt;
    this.#touchedTo = touchedTo;
    this.#insertAt = insertAt;
    this.#keptAt = keptAt;
    this.#insertPoints = insertPoints;
    this.#insertOwners = insertOwners;
  }

  /** The new ring in arrays from `arena`, read from the old one (left as it is). */
  apply(previous: RingData, members: readonly Member[], arena: ArrayArena): RingData {
    const oldPoints = previous.points;
    const oldOwners = previous.owners;
    const touchedAt = this.#touchedAt;
    const touchedTo = this.#touchedTo;
    const insertAt = this.#insertAt;
    const t = touchedAt.length;
    const inserts = insertAt.length;
    const points = arena.uint32(this.#total);
    const owners = arena.uint32(this.#total);
    let out = 0;
    let src = 0;
    let k = 0;
    let f = 0;
    while (k < t || f < inserts) {
      // An insert goes before the old entry at its position.
      const inserting = f < inserts && (k === t || insertAt[f]! <= touchedAt[k]!);
      const at = inserting ? insertAt[f]! : touchedAt[k]!;
      if (at > src) {
        points.set(oldPoints.subarray(src, at), out);
        owners.set(oldOwners.subarray(src, at), out);
        out += at - src;
        src = at;
        pace();
      }
      if (inserting) {
        points[out] = this.#insertPoints[f]!;
        owners[out++] = this.#insertOwners[f++]!;
      } else {
        const owner = touchedTo[k++]!;
        if (owner >= 0) {
          points[out] = oldPoints[at]!;
          owners[out++] = owner;
        }
        src = at + 1;
      }
    }
    if (src < oldPoints.length) {
      points.set(oldPoints.subarray(src), out);
      owners.set(oldOwners.subarray(src), out);
    }
    return { algorithm: 'ring', members, points, owners };
  }

  /**
   * Edits `copy` (another copy of the old ring, nobody else's) into the new ring
   * within its own buffers: drops and relabels left to right (entries only move
   * down), then inserts right to left (entries only move up), each stretch between
   * edits moved whole. Null, and `copy` unchanged, when its buffers cannot hold the
   * new ring.
   */
  applyInPlace(copy: RingData, members: readonly Member[]): RingData | null {
    const total = this.#total;
    const capacity = Math.min(copy.points.buffer.byteLength - copy.points.byteOffset, copy.owners.buffer.byteLength - copy.owners.byteOffset) >>> 2;
    if (copy.points.length !== this.#oldLength || copy.owners.length !== this.#oldLength || copy.points.buffer === copy.owners.buffer || capacity < total) return null;
    const points = new Uint32Array(copy.points.buffer, copy.points.byteOffset, Math.max(total, this.#oldLength));
    const owners = new Uint32Array(copy.owners.buffer, copy.owners.byteOffset, points.length);

    const touchedAt = this.#touchedAt;
    const touchedTo = this.#touchedTo;
    let out = touchedAt.length > 0 ? touchedAt[0]! : this.#oldLength;
    let src = out;
    for (let k = 0; k < touchedAt.length; k++) {
      const at = touchedAt[k]!;
      if (at > src) {
        points.copyWithin(out, src, at);
        owners.copyWithin(out, src, at);
        out += at - src;
        pace();
      }
      const owner = touchedTo[k]!;
      if (owner >= 0) {
        points[out] = points[at]!;
        owners[out++] = owner;
      }
      src = at + 1;
    }
    if (src < this.#oldLength) {
      points.copyWithin(out, src, this.#oldLength);
      owners.copyWithin(out, src, this.#oldLength);
      out += this.#oldLength - src;
    }

    const keptAt = this.#keptAt;
    let end = out;
    let dst = total;
    for (let f = keptAt.length - 1; f >= 0; f--) {
      const at = keptAt[f]!;
      if (at < end) {
        points.copyWithin(dst - (end - at), at, end);
        owners.copyWithin(dst - (end - at), at, end);
        dst -= end - at;
        end = at;
        pace();
      }
      dst--;
      points[dst] = this.#insertPoints[f]!;
      owners[dst] = this.#insertOwners[f]!;
    }
    return { algorithm: 'ring', members, points: points.subarray(0, total), owners: owners.subarray(0, total) };
  }
}

/**
 * Finds the edits that turn `previous` into the ring of `members`. Null when an entry
 * is not where a ring of `previous.members` has it (not a ring buildRing made).
 */
export function planRingPatch(previous: RingData, members: readonly Member[], change: RingChange, vnodes: number): RingPatch | null {
  const before = previous.members;
  const oldPoints = previous.points;
  const oldOwners = previous.owners;
  const renumber = change.renumber;

  // Old positions of the entries of every member that does not keep its index.
  const touchedAt = new Uint32Array(change.droppedPoints + change.movedPoints);
  let t = 0;
  for (let i = 0; i < before.length; i++) {
    if (renumber[i] === i) continue;
    const m = before[i]!;
    const count = vnodes * m.weight;
    for (let j = 0; j < count; j++) {
      const at = locate(oldPoints, oldOwners, xxh32String(`${m.name}-${j}`, 0), i);
      if (at < 0) return null;
      touchedAt[t++] = at;
    }
  }
  if (t !== touchedAt.length) return null;
  touchedAt.sort();
  // Two points of one member may collide (~1 member in 70 at 5,000 x 160): both
  // searches found the first of its two adjacent entries; the repeat is the next one.
  for (let k = 1; k < t; k++) {
    if (touchedAt[k]! > touchedAt[k - 1]!) continue;
    const at = touchedAt[k - 1]! + 1;
    if (at >= oldPoints.length || oldPoints[at] !== oldPoints[at - 1] || oldOwners[at] !== oldOwners[at - 1]) return null;
    touchedAt[k] = at;
  }
  const touchedTo = new Int32Array(t);
  for (let k = 0; k < t; k++) touchedTo[k] = renumber[oldOwners[touchedAt[k]!]!]!;

  // Where each fresh point goes: before the first old entry above it in (point, name)
  // order; the fresh points are in that order, so positions only grow. keptAt counts
  // only the old entries that stay before it.
  const { fresh, scale, freshOwners } = change;
  const inserts = fresh.length;
  const insertAt = new Uint32Array(inserts);
  const keptAt = new Uint32Array(inserts);
  const insertPoints = new Uint32Array(inserts);
  const insertOwners = new Uint32Array(inserts);
  let at = 0;
  let k = 0;
  let dropped = 0;
  for (let f = 0; f < inserts; f++) {
    const v = fresh[f]!;
    const point = Math.floor(v / scale);
    const owner = freshOwners[v - point * scale]!;
    at = insertionPoint(oldPoints, oldOwners, before, point, members[owner]!.name, at);
    for (; k < t && touchedAt[k]! < at; k++) if (touchedTo[k]! < 0) dropped++;
    insertAt[f] = at;
    keptAt[f] = at - dropped;
    insertPoints[f] = point;
    insertOwners[f] = owner;
  }
  return new RingPatch(oldPoints.length, change.total, touchedAt, touchedTo, insertAt, keptAt, insertPoints, insertOwners);
}

/** Position of the first point >= `point` in a sorted array, from `lo` on. */
export function lowerBound(points: Uint32Array, point: number, lo: number): number {
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < point) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Position of the entry (point, owner), or -1. Equal points sit together: a search and a short walk. */
function locate(points: Uint32Array, owners: Uint32Array, point: number, owner: number): number {
  for (let at = lowerBound(points, point, 0); at < points.length && points[at] === point; at++) {
    if (owners[at] === owner) return at;
  }
  return -1;
}

/**
 * Position of the first entry above (point, name) in (point, owner name) order, from
 * `lo` on. An entry of the same name (a reweighted member's old point) is dropped
 * anyway: either side of it will do.
 */
function insertionPoint(points: Uint32Array, owners: Uint32Array, names: readonly Member[], point: number, name: string, lo: number): number {
  let at = lowerBound(points, point, lo);
  while (at < points.length && points[at] === point && names[owners[at]!]!.name < name) at++;
  return at;
}
