import type { Logger } from 'pino';
import type { ConnectionLease } from '../proxy/admission.js';
import type { Metrics } from '../admin/metrics.js';
import type { MeteredListener } from '../admin/types.js';
import type { AdminListener } from '../admin/server.js';
import type { TableBuilder } from '../builders/types.js';
import type { ListenerConfig } from '../config/types.js';
import { HealthMonitor } from '../health/monitor.js';
import type { HealthReporter, RoutedRecord } from '../proxy/context.js';
import { HttpListener } from '../proxy/http/listener.js';
import { TcpListener } from '../proxy/tcp/listener.js';
import { UpstreamPool } from '../routing/pool.js';
import type { MembershipEvent, PoolOptions } from '../routing/types.js';
import { learns } from '../routing/router.js';
import { Rebalancer, type RebalanceStart, type RoutedConnection } from '../routing/rebalance.js';
import type { Upstream } from '../routing/upstream.js';
import type { PinStore } from '../store/types.js';

/**
 * A listener starts accepting once its first table is in use, or after this long
 * (routing then goes by rendezvous until the table arrives; see UpstreamPool).
 */
const FIRST_TABLE_WAIT_MS = 10_000;

/**
 * What a runtime does besides routing, which TETHER_WORKERS > 1 splits between
 * processes (src/workers/): the control plane checks health and accepts nothing, a
 * worker accepts and sends its passive evidence to the control plane.
 */
export interface RuntimeRole {
  /** Binds the listening socket and relays. */
  readonly accepts: boolean;
  /** Where failed and good connects are reported; null: this runtime's own monitor, which it runs. */
  readonly evidence: HealthReporter | null;
  /** A worker's share of TETHER_MAX_CONNECTIONS, lent by the control plane; null: the setting itself. */
  readonly lease: ConnectionLease | null;
}

/** The single process: accepts and checks health itself. */
export const SINGLE_PROCESS: RuntimeRole = { accepts: true, evidence: null, lease: null };

/** One listener with its upstream pool and health monitor. */
export class ListenerRuntime implements AdminListener, MeteredListener {
  config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly listener: TcpListener | HttpListener;
  monitor: HealthMonitor;
  /**
   * This listener's learned pins (http mode's learn rules and TETHER_STICK write them). Calls never reject
   * and never wait longer than TETHER_STORE_TIMEOUT_MS (store/guard.ts).
   */
  readonly pins: PinStore;
  readonly #logger: Logger;
  readonly #rebalancer: Rebalancer;
  readonly #metrics: Metrics;
  readonly #role: RuntimeRole;
  #retargetQueued = false;
  /**
   * Every Upstream object of this listener still worth counting: the pool's, plus
   * removed ones until their last connection ends (the pool forgets them at once).
   */
  readonly #known: Set<Upstream>;

  constructor(
    config: ListenerConfig,
    logger: Logger,
    accessLog: Logger | null,
    onEvent: (listener: string, e: MembershipEvent) => void,
    metrics: Metrics,
    pins: PinStore,
    builder: TableBuilder,
    role: RuntimeRole = SINGLE_PROCESS,
  ) {
    this.config = config;
    this.#role = role;
    this.pins = pins;
    this.#logger = logger;
    this.pool = new UpstreamPool(poolOptions(config), config.upstreams, {
      builder,
      onTableBuilt: (seconds, incremental) => metrics.observeRingBuild(seconds, incremental),
      onBuildFailed: (error, failures, retryInMs) =>
        logger.error(
          { listener: config.name, code: error.code, error: error.message, failures, retryInMs },
          'table build failed: routing on the previous table, retrying',
        ),
    });
    this.#known = new Set(this.pool.list());
    this.monitor = this.#createMonitor(config);
    const hooks = metrics.hooks(config.name);
    this.#metrics = metrics;
    metrics.setLearns(config.name, learns(config));
    const listenerOptions = {
      config,
      pool: this.pool,
      // Through `this`, so a monitor replaced on reload receives the evidence.
      health: role.evidence ?? {
        reportFailure: (name: string, reason: string) => this.monitor.reportFailure(name, reason),
        reportSuccess: (name: string) => this.monitor.reportSuccess(name),
      },
      logger,
      accessLog,
      onSessionStart: hooks.onSessionStart,
      onSessionEnd: hooks.onSessionEnd,
      lease: role.lease,
    };
    this.listener = config.mode === 'http' ? new HttpListener({ ...listenerOptions, pins }) : new TcpListener({ ...listenerOptions, pins });
    this.#rebalancer = new Rebalancer(config.name, this.pool, () => this.connections(), logger);
    this.pool.onChange((event) => {
      onEvent(config.name, event);
      if (event.change === 'added') this.#known.add(this.pool.get(event.upstream)!);
      if (event.change === 'added' || event.change === 'removed' || event.change === 'changed') this.#retarget();
    });
  }

  get name(): string {
    return this.config.name;
  }

  /** The pool's upstreams and removed ones that still have open connections. */
  *upstreams(): IterableIterator<Upstream> {
    for (const u of this.#known) {
      if (u.removed && u.active === 0) {
        this.#known.delete(u);
        continue;
      }
      yield u;
    }
  }

  /**
   * Hands the monitor the new upstream list once per turn of the event loop:
   * setTargets is O(N), and a burst of 50 admin calls (a scale-out) would otherwise
   * make it O(N^2) on the thread that relays bytes.
   */
  #retarget(): void {
    if (this.#retargetQueued) return;
    this.#retargetQueued = true;
    setImmediate(() => {
      this.#retargetQueued = false;
      this.monitor.setTargets(this.pool.list());
    });
  }

  /** Relayed connections and requests open now, whose byte counts grow as bytes pass (admin/live-bytes.ts). */
  openUnits(): Iterable<RoutedRecord> {
    return this.listener.openUnits();
  }

  /** Open connections of this listener, as /rebalance sees them. */
  connections(): Iterable<RoutedConnection> {
    return this.listener.sessions;
  }

  /** Close, `perSecond` a second, the connections whose key now hashes elsewhere. */
  rebalance(perSecond: number): RebalanceStart {
    return this.#rebalancer.start(perSecond);
  }

  /** Stop background work: a running rebalance, table builds. */
  stopBackground(): void {
    this.#rebalancer.stop();
    this.pool.close();
  }

  async start(): Promise<void> {
    if (!(await this.pool.settled(FIRST_TABLE_WAIT_MS))) {
      this.#logger.warn({ listener: this.name }, 'first lookup table not ready: routing by rendezvous until it arrives');
    }
    if (this.#role.evidence === null) {
      this.monitor.setTargets(this.pool.list());
      this.monitor.start();
    }
    if (this.#role.accepts) await this.listener.listen();
  }

  /**
   * Apply a reloaded configuration; connections stay open. `setUpstreams` false: the
   * caller brings the membership in line itself (a shared store adds its changes).
   */
  apply(config: ListenerConfig, setUpstreams = true): void {
    const old = this.config;
    if (old.mode !== config.mode) {
      // The other mode is another kind of listener: keep this one as it is.
      this.#logger.warn({ listener: config.name, mode: old.mode }, 'a changed mode takes effect on restart');
      config = { ...config, mode: old.mode };
    }
    this.config = config;
    this.listener.config = config;
    this.#metrics.setLearns(config.name, learns(config));
    this.pool.setOptions(poolOptions(config));
    if (setUpstreams) this.pool.setUpstreams(config.upstreams);
    if (healthChanged(old, config) && this.#role.evidence === null) {
      this.monitor.stop();
      // A new monitor starts every target up (as at start-up); the pool follows it.
      for (const upstream of this.pool.list()) this.pool.setHealth(upstream.name, true, 'health settings reloaded');
      this.monitor = this.#createMonitor(config);
      this.monitor.setTargets(this.pool.list());
      this.monitor.start();
    }
    if (old.listen.host !== config.listen.host || old.listen.port !== config.listen.port) {
      this.#logger.warn({ listener: config.name }, 'a changed listen address takes effect on restart');
    }
  }

  #createMonitor(config: ListenerConfig): HealthMonitor {
    return new HealthMonitor({
      check: config.health,
      intervalMs: config.healthIntervalMs,
      timeoutMs: config.healthTimeoutMs,
      rise: config.healthRise,
      fall: config.healthFall,
      logger: this.#logger,
      onChange: (name, up, reason) => this.pool.setHealth(name, up, reason),
    });
  }
}

function poolOptions(config: ListenerConfig): PoolOptions {
  return { algorithm: config.hash, vnodes: config.vnodes, balanceFactor: config.balanceFactor };
}

function healthChanged(a: ListenerConfig, b: ListenerConfig): boolean {
  return (
    JSON.stringify(a.health) !== JSON.stringify(b.health) ||
    a.healthIntervalMs !== b.healthIntervalMs ||
    a.healthTimeoutMs !== b.healthTimeoutMs ||
    a.healthRise !== b.healthRise ||
    a.healthFall !== b.healthFall
  );
}
