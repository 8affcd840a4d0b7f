/**
 * hash mod N: the textbook mapping, kept only to show what consistent hashing buys.
 * Changing N from n to n + 1 moves a key unless hash mod n = hash mod (n + 1),
 * i.e. about n/(n + 1) of all keys (Karger et al. 1997, section 1). Members are
 * taken in name order so at least list order does not matter; weights are ignored.
 */
import { indicesByName } from './members.js';
import type { LookupTable, Member, TableData } from './types.js';

export type ModuloData = Extract<TableData, { algorithm: 'modulo' }>;

export function buildModulo(members: readonly Member[]): ModuloData {
  return { algorithm: 'modulo', members, order: indicesByName(members) };
}

export class ModuloTable implements LookupTable {
  readonly algorithm = 'modulo' as const;
  readonly size: number;
  readonly members: readonly Member[];
  /** Member indices in name order. */
  readonly #byName: Uint32Array;

  constructor(data: ModuloData) {
    this.members = data.members;
    this.size = data.members.length;
    this.#byName = data.order;
  }

  primary(hash: number): number {
    const n = this.size;
    return n === 0 ? -1 : this.#byName[(hash >>> 0) % n]!;
  }

  /** The primary, then its successors in name order, wrapping. */
  order(hash: number, out: Uint32Array, limit = out.length): number {
    const n = this.size;
    const want = Math.min(limit, out.length, n);
    if (want === 0) return 0;
    const byName = this.#byName;
    let r = (hash >>> 0) % n;
    for (let k = 0; k < want; k++) {
      out[k] = byName[r]!;
      if (++r === n) r = 0;
    }
    return want;
  }
}
