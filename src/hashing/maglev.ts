/**
 * Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
 * Load Balancer", NSDI 2016, section 3.4).
 *
 * Each member walks its own permutation of a prime-sized table, slot
 * (offset + j x skip) mod M, and the members take turns claiming the next slot of
 * their permutation that is still empty until the table is full. Lookups are one
 * array read; every member holds M/N slots to within one, so balance is limited
 * only by how keys spread over slots. The price is disruption: a membership change
 * also moves a few keys between members that stayed (the paper measures this as
 * its resilience to backend changes), where a ring moves none.
 */
import { FRESH, type ArrayArena } from './ring/arena.js';
import { xxh32String } from './hash.js';
import { indicesByName } from './members.js';
import { pace } from './pace.js';
import type { LookupTable, Member, TableData } from './types.js';

export type MaglevData = Extract<TableData, { algorithm: 'maglev' }>;

export interface MaglevOptions {
  /** Table size, prime. Default: see maglevTableSize(). */
  readonly maglevSize?: number | undefined;
}

/** Seeds for the two permutation hashes (the paper's h1 and h2 over the name). */
const OFFSET_SEED = 0xa1;
const SKIP_SEED = 0xb2;

/** The paper uses M = 65537 and asks for M >> N; 100 slots a member keep shares within ~1%. */
const SLOTS_PER_MEMBER = 100;

/** Slot not yet claimed while populating; never left in a finished table. */
const EMPTY = 0xffffffff;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

function nextPrime(n: number): number {
  let p = Math.max(2, Math.ceil(n));
  while (!isPrime(p)) p++;
  return p;
}

/**
 * Default table size for `members` members: 65537 (the paper's size), or, when
 * 100 x members is larger, the smallest prime of the ladder nextPrime(65536 x 2^k)
 * that is at least 100 x members. Taking the next prime after 100 x members itself
 * would change M, and so remap nearly every key, on every membership change past
 * 655 members, breaking the promise that only ~1/N of the keys move; on the ladder
 * M changes only when the member count crosses a doubling.
 */
export function maglevTableSize(members: number): number {
  const want = members * SLOTS_PER_MEMBER;
  let base = 65536;
  while (base < want) base *= 2;
  return nextPrime(base);
}

/**
 * Populates the lookup table. Weighted by giving heavier members more turns, as
 * the paper suggests for backends of unequal capacity: in each round member i
 * claims up to weight_i slots, so shares are proportional to weight. Members take turns in name
 * order and permutations derive from names only, so the table depends on the set
 * of members, not on how the caller listed them; `slots` holds the caller's
 * indices.
 */
export function buildMaglev(members: readonly Member[], options: MaglevOptions = {}, arena: ArrayArena = FRESH): MaglevData {
  const n = members.length;
  if (n === 0) return { algorithm: 'maglev', members, slots: new Uint32Array(0), byName: new Uint32Array(0) };
  const size = options.maglevSize ?? maglevTableSize(n);
  const slots = arena.uint32(size);

  const byName = indicesByName(members);
  // Per member, in name order: where its permutation stands, and its stride.
  const next = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const weight = new Uint32Array(n);
  for (let r = 0; r < n; r++) {
    const m = members[byName[r]!]!;
    next[r] = xxh32String(m.name, OFFSET_SEED) % size;
    skip[r] = (xxh32String(m.name, SKIP_SEED) % (size - 1)) + 1;
    weight[r] = m.weight;
  }

  slots.fill(EMPTY);
  let filled = 0;
  // Every permutation visits all M slots (M prime, 0 < skip < M), so each inner
  // search ends while any slot is empty; the fill is O(M log M) expected (the
  // paper; M^2 in the worst case).
  fill: for (;;) {
    for (let r = 0; r < n; r++) {
      const index = byName[r]!;
      const s = skip[r]!;
      let c = next[r]!;
      for (let turn = weight[r]!; turn > 0; turn--) {
        while (slots[c] !== EMPTY) {
          c += s;
          if (c >= size) c -= size;
        }
        slots[c] = index;
        c += s;
        if (c >= size) c -= size;
        if (++filled === size) break fill;
      }
      next[r] = c;
    }
    pace();
  }
  return { algorithm: 'maglev', members, slots, byName };
}

export class MaglevTable implements LookupTable {
  readonly algorithm = 'maglev' as const;
  readonly size: number;
  readonly members: readonly Member[];
  readonly #slots: Uint32Array;
  /** Members in name order, for the tail of order() (see there). */
  readonly #byName: Uint32Array;
  /** Epoch-stamped "already emitted" marks, as in RingTable: no per-call clearing. */
  readonly #seen: Uint32Array;
  #epoch = 0;

  constructor(data: MaglevData) {
    this.members = data.members;
    this.size = data.members.length;
    this.#slots = data.slots;
    // From the builder: sorting names here would cost the routing thread ~2 ms at 5,000 members.
    this.#byName = data.byName;
    this.#seen = new Uint32Array(this.size);
  }

  primary(hash: number): number {
    const slots = this.#slots;
    if (this.size === 0) return -1;
    return slots[(hash >>> 0) % slots.length]!;
  }

  /**
   * Distinct owners of the slots from the key's slot onward. The table interleaves
   * members pseudo-randomly, so this spreads a failed member's keys over the others
   * about as evenly as a ring's clockwise walk does, with no second table. Slots
   * cluster a little, so meeting all N takes ~4x the N ln N steps of a random
   * sequence (32,000 steps at 1000 members); the walk is capped at one pass (M
   * steps), and a member it did not meet is appended in name order, so the answer
   * is complete and the same in every process.
   */
  order(hash: number, out: Uint32Array, limit = out.length): number {
    const want = Math.min(limit, out.length, this.size);
    if (want === 0) return 0;
    const slots = this.#slots;
    const m = slots.length;
    const seen = this.#seen;
    let epoch = this.#epoch + 1;
    if (epoch > 0xffffffff) {
      seen.fill(0);
      epoch = 1;
    }
    this.#epoch = epoch;

    let c = (hash >>> 0) % m;
    let count = 0;
    for (let step = 0; step < m && count < want; step++) {
      const owner = slots[c]!;
      if (seen[owner] !== epoch) {
        seen[owner] = epoch;
        out[count++] = owner;
      }
      if (++c === m) c = 0;
    }
    const byName = this.#byName;
    for (let r = 0; r < byName.length && count < want; r++) {
      const owner = byName[r]!;
      if (seen[owner] !== epoch) {
        seen[owner] = epoch;
        out[count++] = owner;
      }
    }
    return count;
  }
}
