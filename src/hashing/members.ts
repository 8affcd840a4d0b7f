/**
 * Name order: the one order every algorithm agrees on.
 *
 * Results must not depend on the order upstreams are listed in, and every process
 * must break ties the same way, so each algorithm ranks members by name. Names are
 * compared by UTF-16 code units (`<`), never localeCompare: collation depends on
 * the ICU data and locale of the process, and two balancers must build one ring.
 */
import type { Member } from './types.js';

/** Member indices sorted by name: byName[rank] = index into `members`. */
export function indicesByName(members: readonly Member[]): Uint32Array {
  const n = members.length;
  const byName = new Uint32Array(n);
  for (let i = 0; i < n; i++) byName[i] = i;
  byName.sort((a, b) => {
    const x = members[a]!.name;
    const y = members[b]!.name;
    return x < y ? -1 : x > y ? 1 : a - b;
  });
  return byName;
}

/** The inverse of indicesByName: rank[index] = position of that member in name order. */
export function nameRanks(byName: Uint32Array): Uint32Array {
  const rank = new Uint32Array(byName.length);
  for (let r = 0; r < byName.length; r++) rank[byName[r]!] = r;
  return rank;
}
