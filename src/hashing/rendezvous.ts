/**
 * Rendezvous, or highest-random-weight, hashing (Thaler and Ravishankar, "Using
 * Name-Based Mappings to Increase Hit Rates", IEEE/ACM ToN 1998).
 *
 * Every member scores the key and the highest score wins. Removing a member moves
 * exactly its keys, adding one moves only keys it now wins, and the fallback order
 * is simply the scores in descending order. Lookups are O(N), which is fine for
 * the tens to hundreds of upstreams a balancer has (about 3 ns a member).
 *
 * Weights use the logarithmic method (Schindelhauer and Schomaker, "Weighted
 * Distributed Hash Tables", SPAA 2005; Resch, "New Hashing Algorithms for Data
 * Storage"): with u uniform in (0,1), score = -w / ln(u) is won by member i with
 * probability w_i / sum(w), and it keeps the minimal-disruption property.
 */
import { fmix32, xxh32String } from './hash.js';
import { indicesByName, nameRanks } from './members.js';
import type { LookupTable, Member, TableData } from './types.js';

export type RendezvousData = Extract<TableData, { algorithm: 'rendezvous' }>;

const SEED = 0x5eed;
const TWO_POW_32 = 4294967296;

/**
 * Score of a member of weight w whose hash for the key is s (uint32). fmix32 of
 * hash ^ seed is an independent-looking uint32 per member; (s + 0.5) / 2^32 puts
 * it in the open interval (0, 1), so the logarithm is finite and negative and the
 * score positive. (Scores of equal-weight members are compared as raw s instead:
 * -w / ln(u) is increasing in u, so the winner is the same without N logarithms.)
 */
function weightedScore(s: number, w: number): number {
  return -w / Math.log((s + 0.5) / TWO_POW_32);
}

export function buildRendezvous(members: readonly Member[]): RendezvousData {
  const n = members.length;
  const seeds = new Uint32Array(n);
  const weights = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    seeds[i] = xxh32String(members[i]!.name, SEED);
    weights[i] = members[i]!.weight;
  }
  return { algorithm: 'rendezvous', members, seeds, weights, rank: nameRanks(indicesByName(members)) };
}

export class RendezvousTable implements LookupTable {
  readonly algorithm = 'rendezvous' as const;
  readonly size: number;
  readonly members: readonly Member[];
  readonly #seeds: Uint32Array;
  readonly #weights: Float64Array;
  /**
   * Name rank per member: equal scores go to the lower name, in every process.
   * (Two names whose seeds collide, odds about N^2 / 2^33, tie on every key; the
   * lower name then takes both shares. Deterministic, just unbalanced.)
   */
  readonly #rank: Uint32Array;
  /** All weights equal: compare raw uint32 scores (see weightedScore). */
  readonly #uniform: boolean;
  /** order() scratch, one slot per member each, allocated once per table. */
  readonly #scores: Float64Array;
  readonly #heap: Uint32Array;

  constructor(data: RendezvousData) {
    this.members = data.members;
    this.size = data.members.length;
    this.#seeds = data.seeds;
    this.#weights = data.weights;
    this.#rank = data.rank;
    let uniform = true;
    for (let i = 1; i < this.size; i++) if (data.weights[i] !== data.weights[0]) uniform = false;
    this.#uniform = uniform;
    this.#scores = new Float64Array(this.size);
    this.#heap = new Uint32Array(this.size);
  }

  primary(hash: number): number {
    const n = this.size;
    const seeds = this.#seeds;
    const rank = this.#rank;
    let best = -1;
    let bestScore = -1;
    if (this.#uniform) {
      for (let i = 0; i < n; i++) {
        const score = fmix32(hash ^ seeds[i]!);
        if (score > bestScore || (score === bestScore && rank[i]! < rank[best]!)) {
          best = i;
          bestScore = score;
        }
      }
      return best;
    }
    const weights = this.#weights;
    for (let i = 0; i < n; i++) {
      const score = weightedScore(fmix32(hash ^ seeds[i]!), weights[i]!);
      if (score > bestScore || (score === bestScore && rank[i]! < rank[best]!)) {
        best = i;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * Members by descending score, allocation-free (scratch arrays live with the
   * table). Retries want k = 2 or 3: k selection passes over the scores, about what
   * primary() costs per pass. Bounded loads may want all N: then a heap, O(N + k
   * log N), rather than selection's N x k (see SELECTION_MAX).
   */
  order(hash: number, out: Uint32Array, limit = out.length): number {
    const n = this.size;
    const want = Math.min(limit, out.length, n);
    if (want === 0) return 0;
    const scores = this.#scores;
    const rank = this.#rank;
    const seeds = this.#seeds;
    if (this.#uniform) {
      for (let i = 0; i < n; i++) scores[i] = fmix32(hash ^ seeds[i]!);
    } else {
      const weights = this.#weights;
      for (let i = 0; i < n; i++) scores[i] = weightedScore(fmix32(hash ^ seeds[i]!), weights[i]!);
    }
    if (want <= SELECTION_MAX) {
      for (let k = 0; k < want; k++) {
        let best = 0;
        for (let i = 1; i < n; i++) if (outranks(scores, rank, i, best)) best = i;
        out[k] = best;
        scores[best] = -1; // taken: below every real score (>= 0), and one taken never outranks another
      }
      return want;
    }
    const heap = this.#heap;
    for (let i = 0; i < n; i++) heap[i] = i;
    for (let i = (n >>> 1) - 1; i >= 0; i--) siftDown(heap, scores, rank, i, n);
    let size = n;
    for (let k = 0; k < want; k++) {
      out[k] = heap[0]!;
      heap[0] = heap[--size]!;
      siftDown(heap, scores, rank, 0, size);
    }
    return want;
  }
}

/**
 * order() takes k passes of selection up to this k, a heap beyond. Measured at 100
 * and 1000 members: selection wins up to k = 6 and the heap from k = 8 (a heapify
 * costs about six selection passes).
 */
const SELECTION_MAX = 6;

/** Whether member a outranks member b: higher score, then lower name. */
function outranks(scores: Float64Array, rank: Uint32Array, a: number, b: number): boolean {
  const sa = scores[a]!;
  const sb = scores[b]!;
  return sa > sb || (sa === sb && rank[a]! < rank[b]!);
}

/** Restores the max-heap property (by outranks) below heap position i, for a heap of `size`. */
function siftDown(heap: Uint32Array, scores: Float64Array, rank: Uint32Array, i: number, size: number): void {
  const item = heap[i]!;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && outranks(scores, rank, heap[child + 1]!, heap[child]!)) child++;
    if (!outranks(scores, rank, heap[child]!, item)) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = item;
}
