import { tableBuffers, tableFromData } from '../hashing/tables.js';
import { hashKey32 } from '../hashing/hash.js';
import { pickBounded, underCap } from './bounded.js';
import { pickTwoChoices } from './p2c.js';
import { RendezvousTable, buildRendezvous } from '../hashing/rendezvous.js';
import type { Algorithm, LookupTable, TableData } from '../hashing/types.js';
import type { UpstreamSpec } from '../config/types.js';
import { errorMessage, RingBuildError, TetherError, UnknownUpstreamError } from '../errors.js';
import { InlineTableBuilder, type BuiltTable, type TableBuilder } from '../builders/worker.js';
import { RoutableView } from './routable-view.js';
import { Upstream, type UpstreamState } from './upstream.js';

export type RouteVia = 'learned' | 'hash' | 'p2c';

export interface RouteDecision {
  readonly via: RouteVia;
  /** Upstreams to try in order: the choice first, then the next in hash order. */
  readonly candidates: Upstream[];
}

export interface PoolOptions {
  readonly algorithm: Algorithm;
  readonly vnodes: number;
  /** 0 = off; else c > 1 (bounded loads). */
  readonly balanceFactor: number;
}

export interface MembershipEvent {
  readonly upstream: string;
  readonly change: 'added' | 'removed' | 'changed' | 'up' | 'down' | 'draining' | 'undrained';
  readonly detail?: string;
}

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

/** Where the pool's table stands; for tests, logs and the admin API. */
export interface TableStatus {
  /** Bumped by every change a table depends on (membership, health, drain, weight, algorithm). */
  readonly version: number;
  /** The version the table in use was built for; -1 before the first. */
  readonly tableVersion: number;
  readonly building: boolean;
  /** Failed builds in a row (0 once one succeeds). */
  readonly failures: number;
}

/** A failed build is retried after 100 ms, doubling up to 10 s while failures go on. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 10_000;

/** How much of the hash order bounded loads looks at before walking all of it. */
const BOUNDED_PREFIX = 8;

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
  /**
   * The routable upstreams (Upstream.slot indexes it) with the loads and weights the
   * pickers read, changed one upstream at a time; also the member order of builds.
   */
  readonly #view = new RoutableView<Upstream>();

  /** The table in use, possibly built for an older membership; null before the first. */
  #table: LookupTable | null = null;
  /** The upstreams the table in use was built over, by table index. */
  #tableUpstreams: readonly Upstream[] = [];
  /** The data behind #table, and whether #table was handed out (the `table` getter). */
  #tableData: TableData | null = null;
  #exposed = false;
  /**
   * Buffers of the table replaced last, when nobody outside the pool can hold it:
   * moved to the worker with the next build and written again (balancer/arena.ts),
   * so rebuilds do not pile external memory on this thread.
   */
  #spare: ArrayBuffer[] = [];
  /**
   * Table member index -> routable slot now, or -1 when that member is not routable
   * now. Written whole when a table is installed, then one entry per slot change.
   */
  #tableSlot = new Int32Array(0);
  /** How many of the table's members are routable now. */
  #tableLive = 0;
  /** Rendezvous over the routable view, made on first need after each change. */
  #fallback: LookupTable | null = null;

  /** Scratch for table orders (table indices) and the routable slots they map to. */
  #raw = new Uint32Array(BOUNDED_PREFIX);
  #order = new Uint32Array(BOUNDED_PREFIX);

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
    if (this.#table === null) return this.#fallbackTable();
    // Handed out: its arrays must stay valid, so they are never recycled.
    this.#exposed = true;
    return this.#table;
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
    if (upstream.drainTimer) clearTimeout(upstream.drainTimer);
    upstream.drainTimer = null;
    if (deadlineS !== undefined) {
      upstream.drainTimer = setTimeout(closeAll, deadlineS * 1000, upstream, 'drain deadline');
      upstream.drainTimer.unref();
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
    if (upstream.drainTimer) clearTimeout(upstream.drainTimer);
    upstream.drainTimer = null;
    if (upstream.draining) {
      upstream.draining = false;
      this.#emit({ upstream: name, change: 'undrained' });
      this.#changed(upstream);
    }
    return upstream;
  }

  /** Where a key goes now by hash (no pins), or p2c when key is null. */
  route(key: string | null, maxCandidates: number): RouteDecision {
    if (this.#view.size === 0) return { via: key === null ? 'p2c' : 'hash', candidates: [] };
    if (key === null) return { via: 'p2c', candidates: this.#twoChoices(maxCandidates) };
    return { via: 'hash', candidates: this.#hashOrder(hashKey32(key), maxCandidates) };
  }

  /**
   * The upstream `key` hashes to now, ignoring pins and load bounds (the question
   * /rebalance asks of every open connection); null when nothing is routable.
   * Allocation-free for keys under WASM_HASH_MIN_LENGTH.
   */
  primary(key: string): Upstream | null {
    if (this.#view.size === 0) return null;
    const hash = hashKey32(key);
    const table = this.#table;
    if (table !== null && this.#tableLive > 0) {
      const slot = this.#tableSlot[table.primary(hash)]!;
      if (slot >= 0) return this.#view.members[slot]!;
    }
    return this.#collect(hash, 1) > 0 ? this.#view.members[this.#order[0]!]! : null;
  }

  /** Count a connection routed to `upstream` (keeps the pickers' load view in step). */
  acquire(upstream: Upstream): void {
    upstream.active++;
    upstream.total++;
    if (this.#view.has(upstream)) this.#view.count(upstream.slot, 1);
  }

  release(upstream: Upstream): void {
    upstream.active--;
    if (this.#view.has(upstream)) this.#view.count(upstream.slot, -1);
  }

  #hashOrder(hash: number, maxCandidates: number): Upstream[] {
    const view = this.#view;
    const routable = view.members;
    const size = routable.length;
    const factor = this.#options.balanceFactor;
    // A short prefix of the hash order serves retries and, nearly always, bounded
    // loads; the whole order (O(N) for some tables) only when none of it has room.
    let count = this.#collect(hash, factor > 1 ? Math.max(maxCandidates, BOUNDED_PREFIX) : maxCandidates);
    const order = this.#order;
    let chosen = order[0]!;
    if (factor > 1) {
      chosen = pickBounded(order, count, view.loads, view.weights, view.active, view.weight, factor);
      if (count < size && !underCap(view.loads[chosen]!, view.weights[chosen]!, view.active, view.weight, factor)) {
        count = this.#collect(hash, size);
        chosen = pickBounded(this.#order, count, view.loads, view.weights, view.active, view.weight, factor);
      }
    }
    const slots = this.#order;
    const out: Upstream[] = [routable[chosen]!];
    for (let i = 0; i < count && out.length < maxCandidates; i++) {
      if (slots[i] !== chosen) out.push(routable[slots[i]!]!);
    }
    return out;
  }

  /**
   * Writes up to `want` routable slots in the key's hash order to #order and returns
   * how many: from the table in use, passing over members no longer routable, or from
   * the rendezvous fallback when the table has none left (or there is no table yet).
   */
  #collect(hash: number, want: number): number {
    if (this.#order.length < want) this.#order = new Uint32Array(Math.max(want, this.#order.length * 2));
    const table = this.#table;
    if (table === null || this.#tableLive === 0) return this.#fallbackTable().order(hash, this.#order, want);
    const map = this.#tableSlot;
    const out = this.#order;
    const need = Math.min(want, this.#tableLive);
    // Fresh table: the first pass finds them all. Stale: ask for more of the order
    // until enough routable members turn up (at most the whole table).
    let ask = Math.min(table.size, need);
    for (;;) {
      if (this.#raw.length < ask) this.#raw = new Uint32Array(Math.max(ask, this.#raw.length * 2));
      const raw = this.#raw;
      const n = table.order(hash, raw, ask);
      let count = 0;
      for (let i = 0; i < n && count < need; i++) {
        const slot = map[raw[i]!]!;
        if (slot >= 0) out[count++] = slot;
      }
      if (count >= need || n >= table.size) return count;
      ask = Math.min(table.size, ask * 2 + need);
    }
  }

  #fallbackTable(): LookupTable {
    if (this.#fallback === null) {
      this.#fallback = new RendezvousTable(buildRendezvous(this.#view.members.map((u) => ({ name: u.name, weight: u.weight }))));
    }
    return this.#fallback;
  }

  #twoChoices(maxCandidates: number): Upstream[] {
    const routable = this.#view.members;
    const chosen = pickTwoChoices(routable.length, this.#view.loads, this.#view.weights);
    const out = [routable[chosen]!];
    if (maxCandidates > 1) {
      // Fallbacks for a failed connect: the least loaded of the rest.
      const rest = routable.filter((u) => u !== out[0]).sort((a, b) => a.active / a.weight - b.active / b.weight);
      for (const u of rest) {
        if (out.length >= maxCandidates) break;
        out.push(u);
      }
    }
    return out;
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
    if (upstream.drainTimer) clearTimeout(upstream.drainTimer);
    upstream.drainTimer = null;
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
    if (touched !== undefined) this.#place(touched);
    else this.#placeAll();
    this.#fallback = null;
    if (this.#retryTimer !== null) {
      // A failed build waits for its retry; a new membership may well build: try now.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    this.#startBuild();
  }

  /** Puts `upstream` in the routable view or takes it out, as its state says. */
  #place(upstream: Upstream): void {
    const view = this.#view;
    const listed = view.has(upstream);
    if (upstream.routable) {
      if (!listed) {
        view.join(upstream);
        this.#remap(upstream);
      } else view.reweigh(upstream);
    } else if (listed) {
      const moved = view.leave(upstream);
      this.#remap(upstream);
      if (moved !== null) this.#remap(moved);
    }
  }

  /** #place for every upstream (start-up, reload): those that left first. */
  #placeAll(): void {
    for (const u of this.#view.snapshot()) if (!u.routable) this.#place(u);
    for (const u of this.#byName.values()) this.#place(u);
  }

  /** `upstream`'s slot changed: so does its entry in the table's map, if it has one. */
  #remap(upstream: Upstream): void {
    const index = upstream.tableIndex;
    if (index < 0 || this.#tableUpstreams[index] !== upstream) return;
    const before = this.#tableSlot[index]!;
    const after = upstream.slot;
    this.#tableSlot[index] = after;
    this.#tableLive += (after >= 0 ? 1 : 0) - (before >= 0 ? 1 : 0);
  }

  /** A new table: its whole map, O(N) with no allocation once the map has grown to fit. */
  #mapTable(): void {
    const upstreams = this.#tableUpstreams;
    if (this.#tableSlot.length < upstreams.length) this.#tableSlot = new Int32Array(Math.max(upstreams.length, this.#tableSlot.length * 2));
    const map = this.#tableSlot;
    let live = 0;
    for (let i = 0; i < upstreams.length; i++) {
      const u = upstreams[i]!;
      u.tableIndex = i;
      const slot = u.slot;
      map[i] = slot;
      if (slot >= 0) live++;
    }
    this.#tableLive = live;
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
    // One reference swap: a route() running now (it cannot, we are on its thread)
    // or any caller holding the old table finishes on the old one.
    const retired = this.#tableData;
    if (retired !== null && !this.#exposed && this.#builder.kind === 'workers') this.#spare = tableBuffers(retired);
    this.#table = tableFromData(built.data);
    this.#tableData = built.data;
    this.#exposed = false;
    this.#tableUpstreams = upstreams;
    this.#mapTable();
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

function closeAll(upstream: Upstream, reason: string): void {
  for (const session of [...upstream.sessions]) session.close(reason);
}

export type { UpstreamState };
