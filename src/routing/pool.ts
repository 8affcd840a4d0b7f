import type { LookupTable } from '../hashing/types.js';
import type { UpstreamSpec } from '../config/types.js';
import { errorMessage, RingBuildError, TetherError, UnknownUpstreamError } from '../errors.js';
import { InlineTableBuilder } from '../builders/inline.js';
import { type BuiltTable, type TableBuilder } from '../builders/types.js';
import { RouteTable } from './route-table.js';
import type { MembershipEvent, PoolOptions, RouteDecision, TableStatus } from './types.js';
import { Upstream, type UpstreamState } from './upstream.js';


type ChangeListener = (event: MembershipEvent) => void;

export interface PoolHooks {
  /**
   * Where tables are built (the Tether's worker pool). Default: inline on this
   * thread, still delivered asynchronously.
   */
  readonly builder?: TableBuilder;
  /**
   * How long each table build took, where it ran (tether_ring_build_seconds), and
   * whether it was derived from the previous ring (tether_ring_builds_total).
   */
  readonly onTableBuilt?: (seconds: number, incremental: boolean) => void;
  /** A build failed; the pool keeps routing and retries in `retryInMs`. */
  readonly onBuildFailed?: (error: TetherError, failures: number, retryInMs: number) => void;
}

/** A failed build is retried after 100 ms, doubling up to 10 s while failures go on. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 10_000;

/** Numbers each pool's series of tables (BuildRequest.key), unique in this process. */
let pools = 0;

/**
 * The upstreams of one listener and the lookup table over the routable ones.
 *
 * Tables are built off the routing thread (a TableBuilder: worker threads) and
 * swapped in whole when they arrive; route() stays synchronous and reads whatever
 * table is in use. Changes that come while a build runs wait, and only the newest
 * membership is built next (coalescing: a burst of 50 changes costs two builds,
 * not 50). Until the newest table arrives, routing uses the one it has and passes
 * over members that are no longer routable: for a ring that is exactly where the
 * new table would send their keys, since removing a member removes only its points.
 * Members added since are not reached until the table that has them arrives.
 * Before any table exists (or when none of the table's members is routable any
 * more), keys are routed by rendezvous over the current routable set, which needs
 * no build.
 *
 * The routable view (routable-view.ts: the routable upstreams, the per-slot loads
 * and weights the pickers read) is always current, and changed one upstream at a
 * time; the table's member indices are mapped onto it through the Upstream objects
 * the table was built over (an upstream removed and added again is
 * a new object: reached again once the next table, already on its way, arrives).
 */
export class UpstreamPool {
  #options: PoolOptions;
  readonly #byName = new Map<string, Upstream>();
  /** Where keys go: the routable view, the table in use and its map onto the view. */
  readonly #routes = new RouteTable();
  readonly #view = this.#routes.view;
  /**
   * Buffers of the table replaced last, when nobody outside the pool can hold it:
   * moved to the worker with the next build and written again (hashing/ring/arena.ts),
   * so rebuilds do not pile external memory on this thread.
   */
  #spare: ArrayBuffer[] = [];

  #version = 0;
  #tableVersion = -1;
  #building = false;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #waiters = new Set<{ readonly version: number; readonly done: (settled: boolean) => void }>();

  readonly #listeners: ChangeListener[] = [];
  readonly #builder: TableBuilder;
  readonly #ownsBuilder: boolean;
  readonly #onTableBuilt: PoolHooks['onTableBuilt'];
  /** This pool's series of tables, so a builder can derive each ring from the last. */
  readonly #tableKey = `pool-${++pools}`;
  readonly #onBuildFailed: PoolHooks['onBuildFailed'];
  /** Told of every acquire and release (TETHER_WORKERS: a worker reports its loads only when they change). */
  #onLoadChange: (() => void) | null = null;

  constructor(options: PoolOptions, specs: readonly UpstreamSpec[] = [], hooks: PoolHooks = {}) {
    this.#options = options;
    this.#builder = hooks.builder ?? new InlineTableBuilder();
    this.#ownsBuilder = hooks.builder === undefined;
    this.#onTableBuilt = hooks.onTableBuilt;
    this.#onBuildFailed = hooks.onBuildFailed;
    for (const spec of specs) {
      this.#byName.set(spec.name, new Upstream(spec.name, spec.host, spec.port, spec.weight));
    }
    this.#changed();
  }

  get options(): PoolOptions {
    return this.#options;
  }

  /**
   * The table routing uses now: the newest built, or, before the first, rendezvous
   * over the routable upstreams. Its `members` are names; indices are its own.
   */
  get table(): LookupTable {
    return this.#routes.table;
  }

  /** Where a key goes now by hash (no pins), or p2c when key is null. */
  route(key: string | null, maxCandidates: number): RouteDecision {
    return this.#routes.route(key, maxCandidates, this.#options.balanceFactor);
  }

  /**
   * The upstream `key` hashes to now, ignoring pins and load bounds (the question
   * /rebalance asks of every open connection); null when nothing is routable.
   * Allocation-free for keys under WASM_HASH_MIN_LENGTH.
   */
  primary(key: string): Upstream | null {
    return this.#routes.primary(key);
  }

  tableStatus(): TableStatus {
    return { version: this.#version, tableVersion: this.#tableVersion, building: this.#building, failures: this.#failures };
  }

  /**
   * Resolves true once the table in use was built for the membership of this call
   * (or a newer one); false when `timeoutMs` passes first or the pool is closed.
   */
  settled(timeoutMs?: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#tableVersion >= this.#version) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const waiter = {
        version: this.#version,
        done: (settled: boolean) => {
          if (timer !== null) clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(settled);
        },
      };
      this.#waiters.add(waiter);
      if (timeoutMs !== undefined) timer = setTimeout(() => waiter.done(false), timeoutMs);
    });
  }

  /** Stop building (shutdown): pending builds are ignored, waiters resolve false. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    for (const waiter of [...this.#waiters]) waiter.done(false);
    if (this.#ownsBuilder) void this.#builder.close();
    else this.#builder.forget(this.#tableKey);
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  list(): Upstream[] {
    return [...this.#byName.values()];
  }

  get(name: string): Upstream | undefined {
    return this.#byName.get(name);
  }

  /** Upstreams that are up (draining included): the readiness signal. */
  upCount(): number {
    let n = 0;
    for (const u of this.#byName.values()) if (u.healthy) n++;
    return n;
  }

  setOptions(options: PoolOptions): void {
    const old = this.#options;
    this.#options = options;
    if (old.algorithm !== options.algorithm || old.vnodes !== options.vnodes) this.#changed();
  }

  /** Make the membership equal `specs` (start-up and reload): adds, changes, removes. */
  setUpstreams(specs: readonly UpstreamSpec[]): void {
    const wanted = new Set<string>();
    let changed = false;
    for (const spec of specs) {
      wanted.add(spec.name);
      if (this.#upsert(spec.name, spec.host, spec.port, spec.weight)) changed = true;
    }
    for (const name of [...this.#byName.keys()]) {
      if (wanted.has(name)) continue;
      this.#remove(name);
      changed = true;
    }
    if (changed) this.#changed();
  }

  /** Add or change one upstream (admin PUT). Returns whether it was new. */
  put(name: string, host: string, port: number, weight?: number): boolean {
    const created = !this.#byName.has(name);
    if (this.#upsert(name, host, port, weight ?? this.#byName.get(name)?.weight ?? 1)) this.#changed(this.#byName.get(name));
    return created;
  }

  remove(name: string): Upstream {
    const upstream = this.#remove(name);
    this.#changed(upstream);
    return upstream;
  }

  setHealth(name: string, up: boolean, reason: string): void {
    const upstream = this.#byName.get(name);
    if (!upstream || upstream.healthy === up) return;
    upstream.healthy = up;
    this.#emit({ upstream: name, change: up ? 'up' : 'down', detail: reason });
    this.#changed(upstream);
  }

  drain(name: string, deadlineS?: number): Upstream {
    const upstream = this.#require(name);
    clearDrainTimer(upstream);
    if (deadlineS !== undefined) {
      upstream.drainTimer = setTimeout(closeAll, deadlineS * 1000, upstream, 'drain deadline');
      upstream.drainTimer.unref();
      upstream.drainDeadlineAt = Date.now() + deadlineS * 1000;
    }
    if (!upstream.draining) {
      upstream.draining = true;
      this.#emit({ upstream: name, change: 'draining', detail: deadlineS === undefined ? undefined : `deadline ${deadlineS}s` });
      this.#changed(upstream);
    }
    return upstream;
  }

  undrain(name: string): Upstream {
    const upstream = this.#require(name);
    clearDrainTimer(upstream);
    if (upstream.draining) {
      upstream.draining = false;
      this.#emit({ upstream: name, change: 'undrained' });
      this.#changed(upstream);
    }
    return upstream;
  }

  /** Count a connection routed to `upstream` (keeps the pickers' load view in step). */
  acquire(upstream: Upstream): void {
    upstream.active++;
    upstream.total++;
    if (this.#view.has(upstream)) this.#view.count(upstream.slot, 1);
    this.#onLoadChange?.();
  }

  release(upstream: Upstream): void {
    upstream.active--;
    if (this.#view.has(upstream)) this.#view.count(upstream.slot, -1);
    this.#onLoadChange?.();
  }

  /** Call `onChange` at every acquire and release from now on (one watcher: the last one set). */
  watchLoads(onChange: () => void): void {
    this.#onLoadChange = onChange;
  }

  /** TETHER_WORKERS: the other workers hold `count` connections to `name` (bounded loads and p2c weigh them). */
  setElsewhere(name: string, count: number): void {
    const upstream = this.#byName.get(name);
    if (upstream === undefined || upstream.elsewhere === count) return;
    const delta = count - upstream.elsewhere;
    upstream.elsewhere = count;
    if (this.#view.has(upstream)) this.#view.count(upstream.slot, delta);
  }

  /** Returns whether the change matters to the table (a new upstream or a new weight). */
  #upsert(name: string, host: string, port: number, weight: number): boolean {
    const existing = this.#byName.get(name);
    if (!existing) {
      this.#byName.set(name, new Upstream(name, host, port, weight));
      this.#emit({ upstream: name, change: 'added', detail: `${host}:${port}*${weight}` });
      return true;
    }
    if (existing.host !== host || existing.port !== port || existing.weight !== weight) {
      const reweighted = existing.weight !== weight;
      existing.host = host;
      existing.port = port;
      existing.weight = weight;
      this.#emit({ upstream: name, change: 'changed', detail: `${existing.address}*${weight}` });
      return reweighted;
    }
    return false;
  }

  #remove(name: string): Upstream {
    const upstream = this.#require(name);
    this.#byName.delete(name);
    upstream.removed = true;
    clearDrainTimer(upstream);
    this.#emit({ upstream: name, change: 'removed' });
    return upstream;
  }

  #require(name: string): Upstream {
    const upstream = this.#byName.get(name);
    if (!upstream) throw new UnknownUpstreamError(name);
    return upstream;
  }

  /**
   * Something a table depends on changed: the routable view follows now, the table
   * later. `touched`: the one upstream that changed (O(1)); none: check them all.
   */
  #changed(touched?: Upstream): void {
    this.#version++;
    if (touched !== undefined) this.#routes.place(touched);
    else this.#routes.placeAll(this.#byName.values());
    if (this.#retryTimer !== null) {
      // A failed build waits for its retry; a new membership may well build: try now.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    this.#startBuild();
  }

  /** One build at a time, always of the newest membership. */
  #startBuild(): void {
    if (this.#building || this.#retryTimer !== null || this.#closed || this.#tableVersion === this.#version) return;
    const version = this.#version;
    // The routable view's order changes only where the membership changed: the
    // builder then touches only those members' points. A copy each build (the table
    // in use keeps the last one); an Upstream is a Member, so the table's members are
    // these objects.
    const upstreams = this.#view.snapshot();
    const spare = this.#spare;
    this.#spare = [];
    this.#building = true;
    this.#builder
      .build({ algorithm: this.#options.algorithm, members: upstreams, options: { vnodes: this.#options.vnodes }, spare, key: this.#tableKey })
      .then(
        (built) => this.#install(built, upstreams, version),
        (err: unknown) => this.#failed(err),
      );
  }

  #install(built: BuiltTable, upstreams: readonly Upstream[], version: number): void {
    this.#building = false;
    if (this.#closed) return;
    this.#failures = 0;
    this.#onTableBuilt?.(built.seconds, built.incremental);
    this.#spare = this.#routes.install(built.data, upstreams, this.#builder.kind === 'workers');
    this.#tableVersion = version;
    for (const waiter of [...this.#waiters]) if (waiter.version <= version) waiter.done(true);
    // Changes that came during the build: build the newest membership now.
    this.#startBuild();
  }

  #failed(err: unknown): void {
    this.#building = false;
    if (this.#closed) return;
    this.#failures++;
    const error = err instanceof TetherError ? err : new RingBuildError(errorMessage(err));
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(this.#failures - 1, 20));
    this.#onBuildFailed?.(error, this.#failures, delay);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#startBuild();
    }, delay);
    this.#retryTimer.unref();
  }

  #emit(event: MembershipEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

function clearDrainTimer(upstream: Upstream): void {
  if (upstream.drainTimer) clearTimeout(upstream.drainTimer);
  upstream.drainTimer = null;
  upstream.drainDeadlineAt = null;
}

function closeAll(upstream: Upstream, reason: string): void {
  for (const session of [...upstream.sessions]) session.close(reason);
}

export type { UpstreamState };
