import { hashKey } from '../../../src/hashing/hash.js';
import type { Algorithm, BuildOptions, LookupTable, Member } from '../../../src/hashing/types.js';

export const ALGORITHMS: readonly Algorithm[] = ['ring', 'maglev', 'rendezvous', 'modulo'];
export const CONSISTENT: readonly Algorithm[] = ['ring', 'maglev', 'rendezvous'];
export const OPTIONS: BuildOptions = { vnodes: 160 };

export { seededRandom } from '../../helpers/random.js';
import { seededRandom } from '../../helpers/random.js';

export function members(n: number, prefix = 'up-'): Member[] {
  return Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, weight: 1 }));
}

export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Hashes of `key-0` .. `key-(n-1)`. */
export function sequentialKeys(n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = hashKey(`key-${i}`);
  return out;
}

/** Hashes of session-id-like keys: 'sess-' and 24 random hex digits. */
export function sessionKeys(n: number, seed = 7): Uint32Array {
  const random = seededRandom(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let id = 'sess-';
    for (let k = 0; k < 3; k++) id += Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
    out[i] = hashKey(id);
  }
  return out;
}

/** Name of the member each key maps to. */
export function assignment(table: LookupTable, keys: Uint32Array): string[] {
  const out = new Array<string>(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = table.members[table.primary(keys[i]!)]!.name;
  return out;
}

/** Keys per member name. */
export function counts(table: LookupTable, keys: Uint32Array): Map<string, number> {
  const byIndex = new Float64Array(table.size);
  for (let i = 0; i < keys.length; i++) byIndex[table.primary(keys[i]!)]++;
  return new Map(table.members.map((m, i) => [m.name, byIndex[i]!]));
}

/** Fullest member's keys over the mean. */
export function maxOverMean(table: LookupTable, keys: Uint32Array): number {
  const c = [...counts(table, keys).values()];
  return Math.max(...c) / (keys.length / c.length);
}
