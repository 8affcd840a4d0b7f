/** Lookups on a built ring (build.ts): binary search for the key's point, then a clockwise walk. */
import { lowerBound } from './patch.js';
import type { LookupTable, Member, RingData } from '../types.js';

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
    const at = lowerBound(this.#points, hash >>> 0, 0);
    return at === this.#points.length ? 0 : at;
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
