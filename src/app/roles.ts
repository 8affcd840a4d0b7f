/**
 * The two sides of TETHER_WORKERS > 1 as a Tether sees them (src/workers/ has the
 * rest). Absent: the single process, which does everything itself.
 */
import type { Scrape } from '../admin/server.js';
import type { Metrics } from '../admin/metrics.js';
import type { StatsSnapshot } from '../admin/page/stats.js';
import type { ConnectionLease } from '../proxy/admission.js';
import type { HealthReporter } from '../proxy/context.js';
import type { RebalanceStart } from '../routing/rebalance.js';
import type { Store } from '../store/types.js';
import type { WorkerView } from '../admin/types.js';
import type { ListenerRuntime } from './listener-runtime.js';

export type TetherRole = { readonly kind: 'control-plane'; readonly plane: RelayPlane } | WorkerRole;

export interface WorkerRole {
  readonly kind: 'worker';
  /** Where a listener's passive evidence goes: the control plane's monitors. */
  readonly evidence: (listener: string) => HealthReporter;
  /** Learned pins held by the control plane (TETHER_STORE=memory); null: the store TETHER_STORE names. */
  readonly store: Store | null;
  /** A listener's share of TETHER_MAX_CONNECTIONS, lent by the control plane. */
  readonly lease: (listener: string) => ConnectionLease;
  /** A listener runtime was made, not yet listening: it takes the control plane's membership. */
  attach(runtime: ListenerRuntime): void;
}

/**
 * The workers, as the control plane's Tether drives them. Its own listeners route
 * (admin API, health checks, /route) but never accept: workers do.
 */
export interface RelayPlane {
  /** Every worker accepts (the start is over): /healthz waits for it. */
  readonly accepting: boolean;
  /** A listener runtime was made (start-up, reload): its membership changes go to the workers. */
  attach(runtime: ListenerRuntime): void;
  /** Resolves once every live worker routes by `listener`'s membership as it is now (bounded). */
  settled(listener: string): Promise<void>;
  /** A reloaded configuration is in force here: workers re-read it, then get every membership again. */
  reloaded(): void;
  /** The control plane's memory store evicted a pin (TETHER_STICKY_MAX): the workers' caches drop it. */
  pinEvicted(listener: string, key: string): void;
  /** GET /metrics: `own` (this process) and every worker's values, summed into one instance's series. */
  scrape(own: Metrics, names: readonly string[] | undefined): Scrape;
  workers(): Promise<readonly WorkerView[]>;
  /** The stats page: `own` with every worker's counts added. */
  stats(own: StatsSnapshot): Promise<StatsSnapshot>;
  /** POST /rebalance: each worker closes its share, `perSecond` in all. */
  rebalance(listener: string, perSecond: number): Promise<RebalanceStart>;
  /** Stop every worker: drain for up to `drainTimeoutMs` (null: close now); resolves once all exited. */
  stop(drainTimeoutMs: number | null): Promise<void>;
}
