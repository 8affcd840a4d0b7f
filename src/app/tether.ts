import type { Logger } from 'pino';
import { Metrics, type MeteredListener } from '../admin/metrics.js';
import { buildStats, type StatsSnapshot } from '../admin/page/stats.js';
import { commandTimeoutMs, createStore, guardPins, type PinStore, type Store } from '../store/create.js';
import { routeWithPins } from '../routing/router.js';
import { AdminServer, type AdminBackend, type AdminListener, type RouteAnswer, type Scrape } from '../admin/server.js';
import type { Config, ListenerConfig } from '../config/types.js';
import { HealthMonitor } from '../health/monitor.js';
import { HttpListener } from '../proxy/http/listener.js';
import { TcpListener } from '../proxy/tcp/listener.js';
import type { AdminChange } from '../membership/overrides.js';
import { SharedMembership, applyChange } from '../membership/sync.js';
import { UpstreamPool, type MembershipEvent, type PoolOptions } from '../routing/pool.js';
import { Rebalancer, type RebalanceStart, type RoutedConnection } from '../routing/rebalance.js';
import type { Upstream } from '../routing/upstream.js';
import { InlineTableBuilder, createTableBuilder, type TableBuilder } from '../builders/worker.js';
import { errorMessage } from '../errors.js';

/**
 * A listener starts accepting once its first table is in use, or after this long
 * (routing then goes by rendezvous until the table arrives; see UpstreamPool).
 */
const FIRST_TABLE_WAIT_MS = 10_000;

/** One listener with its upstream pool and health monitor. */
export class ListenerRuntime implements AdminListener, MeteredListener {
  config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly listener: TcpListener | HttpListener;
  monitor: HealthMonitor;
  /**
   * This listener's learned pins (http mode reads and writes them). Calls never reject
   * and never wait longer than TETHER_STORE_TIMEOUT_MS (affinity/guard.ts).
   */
  readonly pins: PinStore;
  readonly #logger: Logger;
  readonly #rebalancer: Rebalancer;
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
  ) {
    this.config = config;
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
    const listenerOptions = {
      config,
      pool: this.pool,
      // Through `this`, so a monitor replaced on reload receives the evidence.
      health: {
        reportFailure: (name: string, reason: string) => this.monitor.reportFailure(name, reason),
        reportSuccess: (name: string) => this.monitor.reportSuccess(name),
      },
      logger,
      accessLog,
      onSessionStart: hooks.onSessionStart,
      onSessionEnd: hooks.onSessionEnd,
    };
    this.listener = config.mode === 'http' ? new HttpListener({ ...listenerOptions, pins }) : new TcpListener(listenerOptions);
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
    this.monitor.setTargets(this.pool.list());
    this.monitor.start();
    await this.listener.listen();
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
    this.pool.setOptions(poolOptions(config));
    if (setUpstreams) this.pool.setUpstreams(config.upstreams);
    if (healthChanged(old, config)) {
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

export interface RecentChange extends MembershipEvent {
  readonly at: string;
  readonly listener: string;
}

export interface TetherOptions {
  readonly logger: Logger;
}

const RECENT_CHANGES = 200;

/** A running balancer: listeners, admin API, reload and graceful shutdown. */
export class Tether implements AdminBackend {
  readonly logger: Logger;
  #config: Config;
  readonly #runtimes = new Map<string, ListenerRuntime>();
  #admin: AdminServer | null = null;
  #listening = false;
  #shuttingDown = false;
  readonly #recent: RecentChange[] = [];
  readonly #accessLog: Logger | null;
  readonly #metrics = new Metrics();
  readonly #startedAt = Date.now();
  /** Learned pins (and, with Redis, shared membership): made once, kept across reloads. */
  readonly #store: Store;
  /** Admin changes shared through the store; null with the memory store. */
  readonly #shared: SharedMembership | null;
  /** Where every listener's tables are built (TETHER_RING_THREADS); made once. */
  readonly #builder: TableBuilder;

  private constructor(config: Config, options: TetherOptions) {
    this.#config = config;
    this.logger = options.logger;
    const storeLogger = options.logger.child({ component: 'store' });
    const onError = (): void => this.#metrics.storeError();
    this.#store = createStore(config, { logger: storeLogger, onError });
    this.#shared =
      this.#store.membership === null
        ? null
        : new SharedMembership({
            store: this.#store.membership,
            logger: storeLogger,
            onError,
            listener: (name) => this.#runtimes.get(name),
            listeners: () => this.runtimes,
            writeTimeoutMs: commandTimeoutMs(config),
          });
    this.#builder = makeBuilder(config.ringThreads, options.logger);
    this.#accessLog = config.accessLog ? options.logger.child({ component: 'access' }) : null;
  }

  static async start(config: Config, options: TetherOptions): Promise<Tether> {
    const tether = new Tether(config, options);
    try {
      await tether.#start();
    } catch (err) {
      await tether.close();
      throw err;
    }
    return tether;
  }

  get config(): Config {
    return this.#config;
  }

  get runtimes(): ListenerRuntime[] {
    return [...this.#runtimes.values()];
  }

  runtime(name?: string): ListenerRuntime | undefined {
    return name === undefined ? this.runtimes[0] : this.#runtimes.get(name);
  }

  /** The admin server's bound address, e.g. "127.0.0.1:7001", or null when off. */
  get adminAddress(): string | null {
    return this.#admin?.address ?? null;
  }

  get store(): Store {
    return this.#store;
  }

  get recentChanges(): readonly RecentChange[] {
    return this.#recent;
  }

  /** Prometheus metrics of this balancer (its own registry). */
  get metrics(): Metrics {
    return this.#metrics;
  }

  scrape(names?: readonly string[]): Scrape {
    const metrics = this.#metrics;
    return { contentType: metrics.contentType, write: (emit) => metrics.write(emit, names) };
  }

  hasMetric(name: string): boolean {
    return this.#metrics.has(name);
  }

  stats(): StatsSnapshot {
    return buildStats({
      startedAt: this.#startedAt,
      listeners: this.runtimes,
      changes: this.#recent,
      metrics: this.#metrics,
    });
  }

  isListening(): boolean {
    return this.#listening;
  }

  isShuttingDown(): boolean {
    return this.#shuttingDown;
  }

  listeners(): readonly AdminListener[] {
    return this.runtimes;
  }

  async route(listener: AdminListener, key: string): Promise<RouteAnswer> {
    const all = listener.pool.list().length;
    const runtime = this.#runtimes.get(listener.name);
    // Pins exist only where responses are read: http listeners with learn rules.
    const decision =
      runtime !== undefined && listener.config.mode === 'http' && listener.config.learn.length > 0
        ? await routeWithPins(listener.pool, runtime.pins, key, all, listener.config.stickyTtlS)
        : listener.pool.route(key, all);
    return {
      key,
      upstream: decision.candidates[0]?.name ?? null,
      via: decision.via,
      candidates: decision.candidates.map((u) => u.name),
    };
  }

  /**
   * An admin membership change. With a shared store it is stored first and reaches
   * every instance; a StoreError when the store does not take it (nothing changed).
   */
  async changeUpstream(listener: AdminListener, change: AdminChange): Promise<void> {
    if (this.#shared !== null) await this.#shared.change(listener, change);
    else applyChange(listener.pool, change);
  }

  /**
   * Apply a new configuration (SIGHUP): listeners added, removed or updated in place.
   * With a shared store, stored admin changes stay on top of the new file's upstreams
   * (membership/overrides.ts says when the file wins).
   */
  async reload(config: Config): Promise<void> {
    const old = this.#config;
    this.#config = config;
    const wanted = new Set(config.listeners.map((l) => l.name));
    for (const [name, runtime] of this.#runtimes) {
      if (wanted.has(name)) continue;
      this.#runtimes.delete(name);
      this.#metrics.retire(runtime);
      runtime.monitor.stop();
      runtime.stopBackground();
      await runtime.listener.stopAccepting();
      this.logger.info({ listener: name }, 'listener removed; its open connections go on');
    }
    for (const listenerConfig of config.listeners) {
      const runtime = this.#runtimes.get(listenerConfig.name);
      if (runtime) {
        runtime.apply(listenerConfig, this.#shared === null);
        this.#syncFromStore(runtime);
      } else {
        const created = this.#createRuntime(listenerConfig);
        this.#syncFromStore(created);
        await created.start();
        this.logger.info({ listener: listenerConfig.name, address: created.listener.address }, 'listener added');
      }
    }
    if (old.admin?.host !== config.admin?.host || old.admin?.port !== config.admin?.port || old.adminToken !== config.adminToken) {
      this.logger.warn('admin address and token changes take effect on restart');
    }
    if (
      JSON.stringify(old.store) !== JSON.stringify(config.store) ||
      old.redisPrefix !== config.redisPrefix ||
      old.storeTimeoutMs !== config.storeTimeoutMs
    ) {
      this.logger.warn('store settings (store, redis, redisPrefix, storeTimeoutMs) take effect on restart');
    }
    this.logger.info({ listeners: [...this.#runtimes.keys()] }, 'configuration reloaded');
  }

  /**
   * Graceful stop: refuse new connections at once, let open ones finish for up to
   * drainTimeoutMs, then close what is left.
   */
  async shutdown(drainTimeoutMs = this.#config.drainTimeoutMs): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    const runtimes = this.runtimes;
    await Promise.all(runtimes.map((r) => r.listener.stopAccepting()));
    for (const r of runtimes) r.monitor.stop();
    const open = (): number => runtimes.reduce((n, r) => n + r.listener.active, 0);
    this.logger.info({ open: open(), drainTimeoutMs }, 'shutting down: draining connections');
    const deadline = Date.now() + drainTimeoutMs;
    while (open() > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now()))));
    }
    const left = open();
    if (left > 0) this.logger.info({ closing: left }, 'drain timeout: closing remaining connections');
    for (const r of runtimes) r.listener.closeAll('shutdown');
    for (const r of runtimes) r.stopBackground();
    await this.#admin?.close();
    await this.#builder.close();
    this.#metrics.close();
    this.#shared?.close();
    await this.#store.close();
    this.#listening = false;
  }

  /** Stop everything now (tests, failed start-up). */
  async close(): Promise<void> {
    this.#shuttingDown = true;
    for (const r of this.runtimes) {
      r.monitor.stop();
      await r.listener.stopAccepting();
      r.listener.closeAll('shutdown');
      r.stopBackground();
    }
    await this.#admin?.close();
    await this.#builder.close();
    this.#metrics.close();
    this.#shared?.close();
    await this.#store.close();
    this.#listening = false;
  }

  async #start(): Promise<void> {
    const config = this.#config;
    for (const listenerConfig of config.listeners) this.#createRuntime(listenerConfig);
    // Stored admin changes apply before the first connection is accepted.
    await this.#shared?.start();
    for (const runtime of this.#runtimes.values()) {
      await runtime.start();
      this.logger.info(
        { listener: runtime.name, address: runtime.listener.address, mode: runtime.config.mode, hash: runtime.config.hash, upstreams: runtime.pool.list().length },
        'listening',
      );
    }
    if (config.admin) {
      this.#admin = new AdminServer({
        address: config.admin,
        token: config.adminToken,
        backend: this,
        logger: this.logger.child({ component: 'admin' }),
      });
      await this.#admin.listen();
      this.logger.info({ address: this.#admin.address, token: config.adminToken !== null }, 'admin API listening');
    }
    this.#listening = true;
  }

  #createRuntime(listenerConfig: ListenerConfig): ListenerRuntime {
    const runtime = new ListenerRuntime(
      listenerConfig,
      this.logger.child({ component: 'listener', listener: listenerConfig.name }),
      this.#accessLog,
      (listener, event) => this.#recordChange(listener, event),
      this.#metrics,
      guardPins(this.#store, listenerConfig.name, {
        timeoutMs: this.#config.storeTimeoutMs,
        onError: () => this.#metrics.storeError(),
      }),
      this.#builder,
    );
    this.#runtimes.set(listenerConfig.name, runtime);
    this.#metrics.track(runtime);
    return runtime;
  }

  /** Shared store: the stored changes on top of the file's upstreams now, a fresh read soon. */
  #syncFromStore(runtime: ListenerRuntime): void {
    if (this.#shared === null) return;
    this.#shared.apply(runtime);
    this.#shared.refreshSoon(runtime.name);
  }

  #recordChange(listener: string, event: MembershipEvent): void {
    const level = event.change === 'down' ? 'warn' : 'info';
    this.logger[level]({ listener, upstream: event.upstream, change: event.change, detail: event.detail }, 'membership change');
    this.#recent.push({ ...event, listener, at: new Date().toISOString() });
    if (this.#recent.length > RECENT_CHANGES) this.#recent.shift();
  }
}

/** Worker threads, or inline when asked (0) or when the worker file cannot be found. */
function makeBuilder(threads: number, logger: Logger): TableBuilder {
  try {
    return createTableBuilder(threads, {
      onThreadError: (err) => logger.error({ error: err.message }, 'ring build thread failed; builds are retried'),
    });
  } catch (err) {
    logger.error({ error: errorMessage(err) }, 'ring build threads unavailable: building tables on the main thread');
    return new InlineTableBuilder();
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
