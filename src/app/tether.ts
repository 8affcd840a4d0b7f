import type { Logger } from 'pino';
import { Metrics } from '../admin/metrics.js';
import { buildStats, type StatsSnapshot } from '../admin/page/stats.js';
import { commandTimeoutMs, createStore } from '../store/create.js';
import { guardPins } from '../store/guard.js';
import type { Store } from '../store/types.js';
import { learns, routeWithPins } from '../routing/router.js';
import { AdminServer, type AdminBackend, type AdminListener, type RouteAnswer, type Scrape } from '../admin/server.js';
import type { Config, ListenerConfig } from '../config/types.js';
import type { AdminChange } from '../membership/overrides.js';
import { SharedMembership, applyChange } from '../membership/sync.js';
import type { MembershipEvent } from '../routing/types.js';
import type { RebalanceStart } from '../routing/rebalance.js';
import { ListenerRuntime, SINGLE_PROCESS, type RuntimeRole } from './listener-runtime.js';
import type { RelayPlane, TetherRole } from './roles.js';
import type { WorkerView } from '../admin/types.js';
import { processTableBuilder } from '../builders/create.js';
import type { TableBuilder } from '../builders/types.js';

export interface RecentChange extends MembershipEvent {
  readonly at: string;
  readonly listener: string;
}

export interface TetherOptions {
  readonly logger: Logger;
  /** TETHER_WORKERS > 1: which side of the split this process is (roles.ts); absent: the single process. */
  readonly role?: TetherRole;
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
  /** Ends a TETHER_DRAIN_DELAY_MS wait early (a second signal: close at once). */
  #endDelay: (() => void) | null = null;
  /** close() was called: a drain under way stops waiting. */
  #closing = false;
  /** The one stop under way (shutdown and close share it). */
  #stopping: Promise<void> | null = null;
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
  readonly #role: TetherRole | null;
  /** The workers, in the control plane of TETHER_WORKERS > 1. */
  readonly #plane: RelayPlane | null;

  private constructor(config: Config, options: TetherOptions) {
    this.#config = config;
    this.logger = options.logger;
    this.#role = options.role ?? null;
    this.#plane = this.#role?.kind === 'control-plane' ? this.#role.plane : null;
    const storeLogger = options.logger.child({ component: 'store' });
    const onError = (): void => this.#metrics.storeError();
    const given = options.role?.kind === 'worker' ? options.role.store : null;
    const onEvict = (listener: string, key: string): void => {
      this.#metrics.pinEvicted();
      this.#plane?.pinEvicted(listener, key);
    };
    this.#store = given ?? createStore(config, { logger: storeLogger, onError, onEvict });
    // A worker takes its membership from the control plane, which alone syncs with the store.
    this.#shared =
      this.#store.membership === null || this.#role?.kind === 'worker'
        ? null
        : new SharedMembership({
            store: this.#store.membership,
            logger: storeLogger,
            onError,
            listener: (name) => this.#runtimes.get(name),
            listeners: () => this.runtimes,
            writeTimeoutMs: commandTimeoutMs(config),
          });
    this.#builder = processTableBuilder(config.ringThreads, options.logger);
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
    if (this.#plane !== null) return this.#plane.scrape(metrics, names);
    return { contentType: metrics.contentType, write: (emit) => metrics.write(emit, names) };
  }

  hasMetric(name: string): boolean {
    return this.#metrics.has(name);
  }

  /** The stats page's data; with workers, their counts added (they relay, this process does not). */
  stats(): Promise<StatsSnapshot> {
    const own = this.ownStats();
    return this.#plane !== null ? this.#plane.stats(own) : Promise.resolve(own);
  }

  /** This process's own stats (a worker's, as the control plane asks for them). */
  ownStats(): StatsSnapshot {
    return buildStats({
      startedAt: this.#startedAt,
      listeners: this.runtimes,
      changes: this.#recent,
      metrics: this.#metrics,
    });
  }

  isListening(): boolean {
    return this.#listening && (this.#plane?.accepting ?? true);
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
    const decision =
      runtime !== undefined && learns(listener.config)
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
    await this.#plane?.settled(listener.name);
  }

  rebalance(listener: AdminListener, perSecond: number): Promise<RebalanceStart> {
    return this.#plane !== null ? this.#plane.rebalance(listener.name, perSecond) : Promise.resolve(listener.rebalance(perSecond));
  }

  /** GET /workers: the worker processes, or this one process when it relays itself. */
  async workers(): Promise<readonly WorkerView[]> {
    if (this.#plane !== null) return this.#plane.workers();
    const listeners = this.runtimes.map((r) => r.listener);
    const active = listeners.reduce((n, l) => n + l.active, 0);
    const total = listeners.reduce((n, l) => n + l.accepted, 0);
    return [{ id: 1, pid: process.pid, state: this.#shuttingDown ? 'stopping' : 'running', active, total }];
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
        // A worker's membership comes from the control plane (reloaded() below sends it).
        runtime.apply(listenerConfig, this.#shared === null && this.#role?.kind !== 'worker');
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
    this.#plane?.reloaded();
    this.logger.info({ listeners: [...this.#runtimes.keys()] }, 'configuration reloaded');
  }

  /**
   * Graceful stop: /readyz answers 503 at once; listeners go on accepting for
   * drainDelayMs (for load balancers and Kubernetes endpoints to notice), then refuse
   * new connections, let open ones finish for up to drainTimeoutMs, and close what is
   * left.
   */
  async shutdown(drainTimeoutMs = this.#config.drainTimeoutMs, drainDelayMs = this.#config.drainDelayMs): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    if (drainDelayMs > 0) {
      this.logger.info({ drainDelayMs }, 'shutting down: not ready; accepting until the drain delay ends');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainDelayMs);
        this.#endDelay = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#endDelay = null;
    }
    await this.#stop(drainTimeoutMs);
  }

  /** Stop everything now (tests, failed start-up, a second signal). */
  async close(): Promise<void> {
    this.#closing = true;
    this.#endDelay?.();
    // A drain of the workers under way is cut short: they close what is open now.
    if (this.#stopping !== null) void this.#plane?.stop(null);
    await this.#stop(null);
  }

  /** shutdown and close: `drainTimeoutMs` null closes open connections without waiting. */
  #stop(drainTimeoutMs: number | null): Promise<void> {
    this.#stopping ??= this.#stopNow(drainTimeoutMs);
    return this.#stopping;
  }

  async #stopNow(drainTimeoutMs: number | null): Promise<void> {
    this.#shuttingDown = true;
    const runtimes = this.runtimes;
    await Promise.all(runtimes.map((r) => r.listener.stopAccepting()));
    for (const r of runtimes) r.monitor.stop();
    if (this.#plane !== null) await this.#plane.stop(drainTimeoutMs);
    else if (drainTimeoutMs !== null) await this.#drain(runtimes, drainTimeoutMs);
    for (const r of runtimes) r.listener.closeAll('shutdown');
    for (const r of runtimes) r.stopBackground();
    await this.#admin?.close();
    await this.#builder.close();
    this.#metrics.close();
    this.#shared?.close();
    await this.#store.close();
    this.#listening = false;
  }

  /** Waits up to drainTimeoutMs for the open connections of `runtimes` to finish. */
  async #drain(runtimes: readonly ListenerRuntime[], drainTimeoutMs: number): Promise<void> {
    const open = (): number => runtimes.reduce((n, r) => n + r.listener.active, 0);
    this.logger.info({ open: open(), drainTimeoutMs }, 'shutting down: draining connections');
    const deadline = Date.now() + drainTimeoutMs;
    while (open() > 0 && Date.now() < deadline && !this.#closing) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now()))));
    }
    const left = open();
    if (left > 0) this.logger.info({ closing: left }, 'drain timeout: closing remaining connections');
  }

  async #start(): Promise<void> {
    const config = this.#config;
    for (const listenerConfig of config.listeners) this.#createRuntime(listenerConfig);
    // Stored admin changes apply before the first connection is accepted.
    await this.#shared?.start();
    for (const runtime of this.#runtimes.values()) {
      await runtime.start();
      // The control plane says 'listening' once its workers are (src/workers/control-plane.ts).
      if (this.#plane !== null) continue;
      this.logger.info(
        {
          listener: runtime.name,
          address: runtime.listener.address,
          mode: runtime.config.mode,
          hash: runtime.config.hash,
          upstreams: runtime.pool.list().length,
          sockets: runtime.listener.sockets,
          ...(this.#role?.kind === 'worker' ? { listenSocket: runtime.listener.listenSocket } : {}),
        },
        this.#role?.kind === 'worker' ? 'worker listening' : 'listening',
      );
    }
    if (config.admin && this.#role?.kind !== 'worker') {
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
      // The control plane logs membership changes; a worker follows them quietly.
      (listener, event) => (this.#role?.kind === 'worker' ? undefined : this.#recordChange(listener, event)),
      this.#metrics,
      guardPins(this.#store, listenerConfig.name, {
        timeoutMs: this.#config.storeTimeoutMs,
        onError: () => this.#metrics.storeError(),
      }),
      this.#builder,
      this.#runtimeRole(listenerConfig.name),
    );
    this.#runtimes.set(listenerConfig.name, runtime);
    this.#metrics.track(runtime);
    if (this.#role?.kind === 'worker') this.#role.attach(runtime);
    else this.#plane?.attach(runtime);
    return runtime;
  }

  #runtimeRole(listener: string): RuntimeRole {
    const role = this.#role;
    if (role === null) return SINGLE_PROCESS;
    return role.kind === 'worker' ? { accepts: true, evidence: role.evidence(listener), lease: role.lease(listener) } : { accepts: false, evidence: null, lease: null };
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
