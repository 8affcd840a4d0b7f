/**
 * The last ring built for each series of tables (one listener's pool), so the next
 * build of that series can be derived from it in work proportional to the change
 * (rebuildTableData, ring/build.ts updateRing) instead of hashing and sorting every point.
 *
 * Correctness never depends on which ring is remembered: an incremental build gives
 * exactly what a full build of the new membership gives, whatever membership the
 * previous ring had; a stale or missing entry only makes the build slower (a full
 * one). So a cache needs no coordination with whoever holds the tables: a worker
 * thread that missed some builds of a series (several threads) still derives the
 * next one correctly from the last it made.
 */
import { FRESH, roomyBuffer, type ArrayArena } from './arena.js';
import { MAX_RING_POINTS, rebuildTableData, type RebuiltTable } from '../tables.js';
import { pace } from '../pace.js';
import type { Algorithm, BuildOptions, Member, RingData } from '../types.js';

export interface RingCacheOptions {
  /**
   * Keep a private copy of each ring rather than the built arrays themselves. A
   * worker must: its arrays are moved to the routing thread (and later come back as
   * spare buffers to be overwritten). Inline builds keep a reference: nothing writes
   * a built table's arrays again there.
   */
  readonly copy: boolean;
  /** Most points remembered over all series; the least recently built go first. Default MAX_RING_POINTS (64 MiB). */
  readonly maxPoints?: number;
}

export class RingCache {
  readonly #copy: boolean;
  readonly #maxPoints: number;
  /** By series key, least recently built first (Map insertion order). */
  readonly #entries = new Map<string, RingData>();
  #points = 0;
  #incremental = 0;
  #full = 0;

  constructor(options: RingCacheOptions) {
    this.#copy = options.copy;
    this.#maxPoints = options.maxPoints ?? MAX_RING_POINTS;
  }

  /** Builds so far by this cache: derived from a remembered ring, and built whole. */
  get counts(): { readonly incremental: number; readonly full: number } {
    return { incremental: this.#incremental, full: this.#full };
  }

  /**
   * rebuildTableData from the ring last built under `key` (none: a full build), then
   * remembers the new ring under `key`. Throws what buildTableData throws; a failed
   * build leaves the remembered ring as it was.
   */
  build(key: string | undefined, algorithm: Algorithm, members: readonly Member[], options: BuildOptions, arena: ArrayArena = FRESH): RebuiltTable {
    const previous = key === undefined ? null : (this.#entries.get(key) ?? null);
    const built = rebuildTableData(previous, algorithm, members, options, arena);
    if (built.incremental) this.#incremental++;
    else this.#full++;
    if (key !== undefined) this.#remember(key, previous, built);
    return built;
  }

  /** Drop the ring remembered under `key` (its series ended). */
  forget(key: string): void {
    const ring = this.#entries.get(key);
    if (ring === undefined) return;
    this.#entries.delete(key);
    this.#points -= ring.points.length;
  }

  #remember(key: string, previous: RingData | null, built: RebuiltTable): void {
    if (previous !== null) {
      this.#entries.delete(key);
      this.#points -= previous.points.length;
    }
    const data = built.data;
    // Only rings are derived from their predecessor; other tables are not kept.
    if (data.algorithm !== 'ring' || data.points.length > this.#maxPoints) return;
    let kept: RingData = data;
    if (this.#copy) {
      // A patched ring: the same edits on our copy of the previous one (it is ours
      // alone, and the build has read it), which moves only what follows each edit;
      // else a copy of the whole ring, into the previous copy's memory when it fits.
      const edited = built.patch && previous !== null ? built.patch.applyInPlace(previous, data.members) : null;
      kept = edited ?? { algorithm: 'ring', members: data.members, points: copyInto(previous?.points, data.points), owners: copyInto(previous?.owners, data.owners) };
    }
    this.#entries.set(key, kept);
    this.#points += kept.points.length;
    for (const [oldest, ring] of this.#entries) {
      if (this.#points <= this.#maxPoints || oldest === key) break;
      this.#entries.delete(oldest);
      this.#points -= ring.points.length;
    }
  }
}

/** Entries copied between pace() calls: 256 KiB, ~0.03 ms. */
const COPY_STRETCH = 1 << 16;

/**
 * `source` copied into the buffer of `reuse` when it fits (the remembered ring just
 * replaced), else into a new one with 1/8 headroom, so a series that grows by a
 * member or two keeps writing the same memory.
 */
function copyInto(reuse: Uint32Array | undefined, source: Uint32Array): Uint32Array {
  const bytes = source.byteLength;
  const buffer = reuse !== undefined && reuse.buffer.byteLength >= bytes ? reuse.buffer : roomyBuffer(bytes);
  const out = new Uint32Array(buffer, 0, source.length);
  // In stretches (a 5,000-member ring is 3.2 MB an array): pace() may rest between them.
  for (let at = 0; at < source.length; at += COPY_STRETCH) {
    out.set(source.subarray(at, Math.min(source.length, at + COPY_STRETCH)), at);
    pace();
  }
  return out;
}
