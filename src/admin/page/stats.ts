/**
 * The data behind the stats page: what GET / renders, and GET /stats.json as JSON.
 */
import { hashKey } from '../../hashing/hash.js';
import type { LookupTable } from '../../hashing/types.js';
import type { ListenerConfig } from '../../config/types.js';
import type { Outcome } from '../../proxy/types.js';
import type { MembershipEvent, RouteVia } from '../../routing/types.js';
import type { Metrics } from '../metrics.js';
import { OUTCOMES, type MeteredListener } from '../types.js';

/** Synthetic keys `k0`..`k9999` measure each upstream's share of the key space. */
export const KEY_SAMPLE = 10_000;

/** Changes shown, newest first. */
const CHANGES_SHOWN = 50;

export type UpstreamStatsState = 'up' | 'down' | 'draining' | 'removed';

export interface UpstreamStats {
  readonly name: string;
  readonly address: string;
  /** "removed": deleted from the pool, connections still open. */
  readonly state: UpstreamStatsState;
  readonly weight: number;
  readonly active: number;
  /** Connections routed to it (as GET /upstreams). */
  readonly total: number;
  /** Bytes so far, as tether_bytes_total; null on a removed twin of a live name. */
  readonly fromClient: number | null;
  readonly toClient: number | null;
  /** Fraction (0..1) of the sample keys the current table maps to it. */
  readonly share: number;
}

export interface ListenerStats {
  readonly name: string;
  readonly address: string;
  readonly mode: string;
  readonly hash: string;
  readonly vnodes: number;
  readonly balanceFactor: number;
  readonly active: number;
  /** Closed connections by outcome (every upstream, and none). */
  readonly outcomes: Record<Outcome, number>;
  readonly decisions: Record<RouteVia, number>;
  readonly fromClient: number;
  readonly toClient: number;
  readonly upstreams: readonly UpstreamStats[];
}

export interface ChangeStats {
  readonly at: string;
  readonly listener: string;
  readonly upstream: string;
  readonly change: MembershipEvent['change'];
  readonly detail: string | null;
}

export interface StatsSnapshot {
  readonly generatedAt: string;
  readonly process: {
    readonly pid: number;
    readonly node: string;
    readonly uptimeS: number;
    readonly rssBytes: number;
    readonly heapUsedBytes: number;
  };
  readonly keySample: number;
  readonly listeners: readonly ListenerStats[];
  /** Recent membership and health changes, newest first. */
  readonly changes: readonly ChangeStats[];
}

/** What the stats are built from (a Tether and its ListenerRuntimes). */
export interface StatsSource {
  readonly startedAt: number;
  readonly listeners: readonly StatsListener[];
  readonly changes: readonly (MembershipEvent & { readonly at: string; readonly listener: string })[];
  readonly metrics: Metrics;
}

export interface StatsListener extends MeteredListener {
  readonly config: ListenerConfig;
  readonly listener: { readonly address: string };
}

export function buildStats(source: StatsSource): StatsSnapshot {
  const memory = process.memoryUsage();
  return {
    generatedAt: new Date().toISOString(),
    process: {
      pid: process.pid,
      node: process.version,
      uptimeS: Math.round((Date.now() - source.startedAt) / 1000),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
    },
    keySample: KEY_SAMPLE,
    listeners: source.listeners.map((l) => listenerStats(l, source.metrics)),
    changes: source.changes
      .slice(-CHANGES_SHOWN)
      .reverse()
      .map((c) => ({ at: c.at, listener: c.listener, upstream: c.upstream, change: c.change, detail: c.detail ?? null })),
  };
}

function listenerStats(l: StatsListener, metrics: Metrics): ListenerStats {
  const totals = metrics.totals(l.name);
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  for (const t of totals.upstreams.values()) for (const o of OUTCOMES) outcomes[o] += t.outcomes[o];
  // Bytes so far, open connections' included (admin/live-bytes.ts).
  const bytesByName = metrics.bytes(l.name);
  let fromClient = 0;
  let toClient = 0;
  for (const b of bytesByName.values()) {
    fromClient += b.fromClient;
    toClient += b.toClient;
  }
  const share = keyShare(l.pool.table);
  const live = new Set(l.pool.list().map((u) => u.name));
  const upstreams: UpstreamStats[] = [];
  let active = 0;
  for (const u of l.upstreams()) {
    active += u.active;
    // A removed upstream whose name is back in the pool: its bytes are on the live row.
    const twin = u.removed && live.has(u.name);
    const bytes = twin ? undefined : bytesByName.get(u.name);
    upstreams.push({
      name: u.name,
      address: u.address,
      state: u.removed ? 'removed' : u.state,
      weight: u.weight,
      active: u.active,
      total: u.total,
      fromClient: twin ? null : (bytes?.fromClient ?? 0),
      toClient: twin ? null : (bytes?.toClient ?? 0),
      share: u.removed ? 0 : (share.get(u.name) ?? 0),
    });
  }
  const c = l.config;
  return {
    name: l.name,
    address: l.listener.address,
    mode: c.mode,
    hash: c.hash,
    vnodes: c.vnodes,
    balanceFactor: c.balanceFactor,
    active,
    outcomes,
    decisions: { ...totals.decisions },
    fromClient,
    toClient,
    upstreams,
  };
}

let sampleHashes: Uint32Array | null = null;
const shares = new WeakMap<LookupTable, ReadonlyMap<string, number>>();

/**
 * Each member's share of the key space on `table`, measured by mapping the sample
 * keys through it. Cached per table: the pool swaps in a new table object on every
 * membership change, so a reference is a version. The table's own mapping (its
 * primary) is used, not pool.route(): with bounded loads on, route() also weighs
 * live connection counts, which are not a property of the table.
 */
export function keyShare(table: LookupTable): ReadonlyMap<string, number> {
  const cached = shares.get(table);
  if (cached) return cached;
  if (sampleHashes === null) {
    sampleHashes = new Uint32Array(KEY_SAMPLE);
    for (let i = 0; i < KEY_SAMPLE; i++) sampleHashes[i] = hashKey(`k${i}`);
  }
  const counts = new Uint32Array(table.size);
  for (let i = 0; i < KEY_SAMPLE; i++) {
    const member = table.primary(sampleHashes[i]!);
    if (member >= 0) counts[member]++;
  }
  const result = new Map<string, number>();
  table.members.forEach((m, i) => result.set(m.name, counts[i]! / KEY_SAMPLE));
  shares.set(table, result);
  return result;
}
