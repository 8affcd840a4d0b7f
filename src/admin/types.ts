/** What the metrics (metrics.ts, upstream-families.ts) and the stats page share, and read from a listener. */
import type { RoutedRecord } from '../proxy/context.js';
import type { Outcome } from '../proxy/types.js';
import type { UpstreamPool } from '../routing/pool.js';
import type { RouteVia } from '../routing/types.js';
import type { Upstream } from '../routing/upstream.js';

export const OUTCOMES: readonly Outcome[] = ['ok', 'refused', 'no_upstream', 'connect_failed', 'bad_request', 'timeout'];
export const VIAS: readonly RouteVia[] = ['learned', 'hash', 'p2c'];

/** What the metrics read from one listener at scrape time. */
export interface MeteredListener {
  readonly name: string;
  readonly pool: UpstreamPool;
  /**
   * The pool's upstreams plus removed ones that still hold open connections
   * (a removed upstream lives on while its connections do).
   */
  upstreams(): Iterable<Upstream>;
  /**
   * Units open now whose byte counts grow as bytes pass (live-bytes.ts): the
   * listener's relayed connections.
   */
  openUnits(): Iterable<RoutedRecord>;
}

/** Ended-unit totals of one (listener, upstream) pair; upstream "" = none. */
export interface UpstreamTotals {
  readonly upstream: string;
  readonly outcomes: Record<Outcome, number>;
  fromClient: number;
  toClient: number;
}

/** Running totals of one listener, kept across reloads under its name. */
export interface ListenerTotals {
  readonly listener: string;
  readonly decisions: Record<RouteVia, number>;
  /** By upstream name; "" holds connections that never reached an upstream. */
  readonly upstreams: ReadonlyMap<string, UpstreamTotals>;
}

// ---------------------------------------------------------------- GET /workers (TETHER_WORKERS, src/workers/)

/** One worker as GET /workers answers it. */
export interface WorkerView {
  /** Its slot, 1..N: a replacement takes the slot of the worker it replaces. */
  readonly id: number;
  readonly pid: number;
  readonly state: WorkerState;
  /** Connections open now, over every listener (0 when it did not answer). */
  readonly active: number;
  /** Connections accepted since it started. */
  readonly total: number;
}

/**
 * starting: forked, not yet accepting; running: accepting; stopping: draining on a
 * signal; unresponsive: running but did not answer within the ask timeout; standby:
 * loaded and following the memberships, not accepting, ready to take the slot of a
 * worker that dies (id 0).
 */
export type WorkerState = 'starting' | 'running' | 'stopping' | 'unresponsive' | 'standby';
