/**
 * The balancer maps a 32-bit key hash to a member index. It does no I/O and keeps
 * no connection state, so a table can be built in a worker thread and moved across
 * as typed arrays (see TableData).
 */

export interface Member {
  /** Identity: every point, slot and score derives from the name only. */
  readonly name: string;
  /** 1-256. */
  readonly weight: number;
}

export type Algorithm = 'ring' | 'maglev' | 'rendezvous' | 'modulo';

export interface BuildOptions {
  /** Ring points per unit of weight (TETHER_VNODES). */
  readonly vnodes: number;
  /**
   * Maglev table size; must be prime. Default: 65537, or for large pools the next prime
   * >= 65536 x 2^k that is at least 100 x members (so the size changes only when the
   * member count doubles, not on every change: a new size remaps nearly every key).
   */
  readonly maglevSize?: number;
}

/**
 * Plain data, transferable between threads: only numbers, strings and typed arrays.
 * `members` is the list the table was built over, in the order indices refer to.
 * Everything that costs more than O(N) to derive (sorted points, name orders) is
 * computed by the builder, so wrapping the data on the routing thread is cheap.
 */
export type TableData =
  | { readonly algorithm: 'ring'; readonly members: readonly Member[]; readonly points: Uint32Array; readonly owners: Uint32Array }
  | { readonly algorithm: 'maglev'; readonly members: readonly Member[]; readonly slots: Uint32Array; readonly byName: Uint32Array }
  | {
      readonly algorithm: 'rendezvous';
      readonly members: readonly Member[];
      readonly seeds: Uint32Array;
      readonly weights: Float64Array;
      readonly rank: Uint32Array;
    }
  | { readonly algorithm: 'modulo'; readonly members: readonly Member[]; readonly order: Uint32Array };

export interface LookupTable {
  readonly algorithm: Algorithm;
  /** Number of members; 0 means every lookup answers -1. */
  readonly size: number;
  readonly members: readonly Member[];
  /** Member index the hash maps to, or -1 when there are no members. Allocation-free. */
  primary(hash: number): number;
  /**
   * Distinct member indices in this algorithm's hash order (the first equals primary()),
   * written to `out`; returns how many were written: min(limit, out.length, size),
   * `limit` defaulting to out.length. Used for retries and bounded loads.
   * Allocation-free.
   */
  order(hash: number, out: Uint32Array, limit?: number): number;
}

/** The data of a ring (ring/build.ts builds it, ring/patch.ts edits it, ring/table.ts looks up in it). */
export type RingData = Extract<TableData, { algorithm: 'ring' }>;
