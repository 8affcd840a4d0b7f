/**
 * One entry for every hashing algorithm: build plain TableData (pure and
 * deterministic, so it can run in a worker thread and be transferred as typed
 * arrays), then wrap it in a LookupTable on the thread that routes.
 */
import { isUpstreamWeight, UPSTREAM_WEIGHT } from '../config/upstream-rules.js';
import { TetherError } from '../errors.js';
import { FRESH, type ArrayArena } from './ring/arena.js';
import { MaglevTable, buildMaglev, isPrime, maglevTableSize } from './maglev.js';
import { ModuloTable, buildModulo } from './modulo.js';
import { RendezvousTable, buildRendezvous } from './rendezvous.js';
import { RING_MAX_MEMBERS, buildRing, updateRing } from './ring/build.js';
import { RingTable } from './ring/table.js';
import type { RingPatch } from './ring/patch.js';
import type { Algorithm, BuildOptions, LookupTable, Member, TableData } from './types.js';

export type { Algorithm, BuildOptions, LookupTable, Member, TableData } from './types.js';

/**
 * Largest ring, in points. Envoy caps ring_hash at 8M entries by default
 * (maximum_ring_size) for the same reason: memory (8 bytes a point here) and
 * build time grow with it while balance has long stopped improving.
 */
export const MAX_RING_POINTS = 1 << 23;

/** Largest Maglev table (64 MiB of slots): the default size reaches it near 80,000 members. */
export const MAX_MAGLEV_SIZE = 1 << 24;

const ALGORITHMS: readonly Algorithm[] = ['ring', 'maglev', 'rendezvous', 'modulo'];

function invalid(message: string): TetherError {
  return new TetherError('TETHER_ERR_CONFIG', message);
}

/**
 * Checks the input once, at the edge, naming what is wrong; the builders and
 * tables then trust it.
 */
function validate(algorithm: Algorithm, members: readonly Member[], options: BuildOptions): void {
  checkInput(algorithm, members, options, new Set());
}

/**
 * validate's checks, in its order; names unique only when given a set to collect them
 * in (a Set of 5,000 names costs ~0.4 ms, more than the rest of a one-member ring
 * change: see rebuildTableData).
 */
function checkInput(algorithm: Algorithm, members: readonly Member[], options: BuildOptions, names: Set<string> | null): void {
  if (!ALGORITHMS.includes(algorithm)) {
    throw invalid(`algorithm must be one of ${ALGORITHMS.join(', ')} (got ${JSON.stringify(algorithm)})`);
  }
  let totalWeight = 0;
  for (let i = 0; i < members.length; i++) {
    const { name, weight } = members[i]!;
    if (typeof name !== 'string' || name.length === 0) {
      throw invalid(`members[${i}].name must be a non-empty string`);
    }
    if (names !== null) {
      if (names.has(name)) throw invalid(`members[${i}].name ${JSON.stringify(name)} is not unique`);
      names.add(name);
    }
    if (!isUpstreamWeight(weight)) {
      throw invalid(`members[${i}].weight must be an integer from ${UPSTREAM_WEIGHT.min} to ${UPSTREAM_WEIGHT.max} (got ${String(weight)})`);
    }
    totalWeight += weight;
  }
  if (algorithm === 'ring') {
    if (!Number.isInteger(options.vnodes) || options.vnodes < 1) {
      throw invalid(`options.vnodes must be a positive integer (got ${String(options.vnodes)})`);
    }
    if (members.length > RING_MAX_MEMBERS) {
      throw invalid(`a ring holds at most ${RING_MAX_MEMBERS} members (got ${members.length})`);
    }
    if (options.vnodes * totalWeight > MAX_RING_POINTS) {
      throw invalid(
        `options.vnodes x total weight must be at most ${MAX_RING_POINTS} (got ${options.vnodes} x ${totalWeight})`,
      );
    }
  }
  if (algorithm === 'maglev') {
    const size = options.maglevSize;
    if (size !== undefined && (!isPrime(size) || size < members.length)) {
      throw invalid(`options.maglevSize must be a prime >= the number of members (got ${String(size)})`);
    }
    const effective = size ?? maglevTableSize(members.length);
    if (effective > MAX_MAGLEV_SIZE) {
      throw invalid(`a Maglev table holds at most ${MAX_MAGLEV_SIZE} slots (${members.length} members need ${effective})`);
    }
  }
}

/**
 * Builds the table data for `members`; indices in it refer to `members` as given.
 * `arena` supplies the big arrays (a worker passes the buffers of a retired table).
 */
export function buildTableData(algorithm: Algorithm, members: readonly Member[], options: BuildOptions, arena: ArrayArena = FRESH): TableData {
  validate(algorithm, members, options);
  return buildOwn(algorithm, ownCopy(members), options, arena);
}

/** A table and whether it was derived from a previous one rather than built whole. */
export interface RebuiltTable {
  readonly data: TableData;
  readonly incremental: boolean;
  /** The edits that made a ring from `previous` when it was patched (ring/patch.ts), to replay on another copy of it. */
  readonly patch?: RingPatch | null;
}

/**
 * The table buildTableData(algorithm, members, options) builds, derived from
 * `previous` when that is cheaper: for a ring, when `previous` is a ring of the same
 * vnodes and few members differ (ring/build.ts, updateRing). Every other case, Maglev
 * included (its table depends on every member's permutation), is a full build.
 * Either way the result is identical, array for array.
 */
export function rebuildTableData(
  previous: TableData | null,
  algorithm: Algorithm,
  members: readonly Member[],
  options: BuildOptions,
  arena: ArrayArena = FRESH,
): RebuiltTable {
  if (algorithm === 'ring' && previous !== null && previous.algorithm === 'ring') {
    // Names are proven unique against the previous ring's (validated) names instead
    // of a set of them all: updateRing derives nothing from a list with a repeat.
    // Anything refused is checked in full, so errors read as a full build's would.
    try {
      checkInput(algorithm, members, options, null);
    } catch {
      validate(algorithm, members, options);
    }
    const own = ownCopy(members);
    const update = updateRing(previous, own, options, arena);
    if (update !== null) return { data: update.data, incremental: true, patch: update.patch };
    validate(algorithm, members, options);
    return { data: buildOwn(algorithm, own, options, arena), incremental: false };
  }
  validate(algorithm, members, options);
  return { data: buildOwn(algorithm, ownCopy(members), options, arena), incremental: false };
}

/**
 * A private copy of plain { name, weight } objects: structured-cloneable for a
 * worker, and immune to the caller mutating its array (or its Upstream objects)
 * after the build.
 */
function ownCopy(members: readonly Member[]): Member[] {
  return members.map((m) => ({ name: m.name, weight: m.weight }));
}

function buildOwn(algorithm: Algorithm, own: Member[], options: BuildOptions, arena: ArrayArena): TableData {
  switch (algorithm) {
    case 'ring':
      return buildRing(own, options, arena);
    case 'maglev':
      return buildMaglev(own, options, arena);
    case 'rendezvous':
      return buildRendezvous(own);
    case 'modulo':
      return buildModulo(own);
  }
}

/** Wraps data from buildTableData (possibly built in another thread) for lookups. */
export function tableFromData(data: TableData): LookupTable {
  switch (data.algorithm) {
    case 'ring':
      return new RingTable(data);
    case 'maglev':
      return new MaglevTable(data);
    case 'rendezvous':
      return new RendezvousTable(data);
    case 'modulo':
      return new ModuloTable(data);
  }
}

/**
 * The distinct buffers behind `data`'s typed arrays: the transfer list that moves a
 * table between threads without copying it.
 */
export function tableBuffers(data: TableData): ArrayBuffer[] {
  const views: ArrayBufferView[] = [];
  switch (data.algorithm) {
    case 'ring':
      views.push(data.points, data.owners);
      break;
    case 'maglev':
      views.push(data.slots, data.byName);
      break;
    case 'rendezvous':
      views.push(data.seeds, data.weights, data.rank);
      break;
    case 'modulo':
      views.push(data.order);
      break;
  }
  // A buffer listed twice makes postMessage throw; a zero-length one is not worth moving.
  const buffers = new Set<ArrayBuffer>();
  for (const v of views) if (v.byteLength > 0) buffers.add(v.buffer as ArrayBuffer);
  return [...buffers];
}

export function buildTable(algorithm: Algorithm, members: readonly Member[], options: BuildOptions): LookupTable {
  return tableFromData(buildTableData(algorithm, members, options));
}
