/**
 * Keeps every listener's pool in step with the membership held in a shared store, so
 * every instance on that store routes every key alike.
 *
 * - An admin change is written to the store first (atomically, announced on pub/sub),
 *   then applied here from what the store answered. If the store cannot take it, the
 *   call fails and nothing changes anywhere: an instance never drifts on its own.
 * - Announcements from other instances make this one read the listener's record and
 *   apply it: within a round trip, well under a second.
 * - When the store comes (back), every listener is read again (announcements may have
 *   been missed); if the store lost its data (Redis restarted without persistence),
 *   what this instance holds is written back first.
 * - Every few seconds each listener is read again anyway: a missed announcement costs
 *   at most that long.
 * Reads and writes for one listener go over one connection, so they are answered in
 * the order sent; a sequence number makes sure an older answer never replaces a newer.
 */
import type { Logger } from 'pino';
import { EMPTY_SNAPSHOT, type MembershipSnapshot, type MembershipStore } from '../store/types.js';
import type { ListenerConfig, UpstreamSpec } from '../config/types.js';
import { asError, errorMessage, StoreError } from '../errors.js';
import type { UpstreamPool } from '../routing/pool.js';
import { effectiveMembership, writeFor, type AdminChange } from './overrides.js';

/** What sync needs of a listener: its file upstreams (the base) and its pool. */
export interface SyncTarget {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly pool: UpstreamPool;
}

export interface SharedMembershipOptions {
  readonly store: MembershipStore;
  readonly logger: Logger;
  /** Counts a failed store call (tether_store_errors_total). */
  readonly onError: () => void;
  readonly listener: (name: string) => SyncTarget | undefined;
  readonly listeners: () => readonly SyncTarget[];
  /** The longest an admin call waits for the store to take a change. */
  readonly writeTimeoutMs: number;
}

/** How long start-up waits for the store before routing by the file alone. */
export const START_WAIT_MS = 2_000;
/** Each listener is read again this often, whatever the announcements say. */
export const REFRESH_INTERVAL_MS = 5_000;

interface ListenerState {
  snapshot: MembershipSnapshot;
  /** Sequence number of the last read or write sent, and of the last one applied. */
  issued: number;
  applied: number;
  /** Drains applied from the store, with their deadline: a changed deadline is re-applied. */
  readonly drains: Map<string, number | null>;
}

/** Apply an admin change to one pool directly (no shared store). */
export function applyChange(pool: UpstreamPool, change: AdminChange): void {
  switch (change.op) {
    case 'put':
      pool.put(change.upstream, change.host, change.port, change.weight);
      return;
    case 'delete':
      pool.remove(change.upstream);
      return;
    case 'drain':
      pool.drain(change.upstream, change.deadlineS);
      return;
    case 'undrain':
      pool.undrain(change.upstream);
      return;
  }
}

export class SharedMembership {
  readonly #options: SharedMembershipOptions;
  readonly #states = new Map<string, ListenerState>();
  #timer: NodeJS.Timeout | null = null;
  #resync: Promise<void> | null = null;
  #resyncAgain = false;
  #failing = false;
  #closed = false;

  constructor(options: SharedMembershipOptions) {
    this.#options = options;
  }

  /**
   * Subscribe, and apply what the store holds before listeners start, waiting at most
   * START_WAIT_MS for it: a store that is down must not keep tether from starting.
   */
  async start(): Promise<void> {
    const { store, logger } = this.#options;
    store.subscribe({
      onChange: (listener, from, version) => this.#onChange(listener, from, version),
      onReady: () => void this.#scheduleResync(),
    });
    if (await store.ready(START_WAIT_MS)) {
      await this.#scheduleResync();
    } else {
      logger.warn({ waitedMs: START_WAIT_MS }, 'shared store not reachable at start: membership from the configuration until it is');
    }
    this.#timer = setInterval(() => this.#refreshAll(), REFRESH_INTERVAL_MS);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /**
   * An admin change: stored (and announced) first, then applied here. Throws a
   * StoreError when the store does not take it.
   */
  async change(target: SyncTarget, change: AdminChange): Promise<void> {
    const { store, writeTimeoutMs } = this.#options;
    if (!store.connected) {
      this.#options.onError();
      throw new StoreError('the shared store is unreachable: nothing was changed (every instance must see the same membership)');
    }
    const state = this.#state(target.name);
    const write = writeFor(change, target.config.upstreams, store.instanceId, Date.now());
    const seq = ++state.issued;
    let snapshot: MembershipSnapshot;
    try {
      snapshot = await withTimeout(store.write(target.name, write), writeTimeoutMs);
    } catch (err) {
      this.#options.onError();
      // It may still land: read again so this instance shows what the store holds.
      this.refreshSoon(target.name);
      throw new StoreError(
        `the shared store did not confirm the change within ${writeTimeoutMs} ms (${errorMessage(err)}): it may or may not be made; GET /upstreams shows what is in force`,
      );
    }
    this.#accept(target.name, seq, snapshot);
  }

  /** Bring one listener's pool to its file upstreams plus the stored changes (after a reload, at start). */
  apply(target: SyncTarget): void {
    const state = this.#state(target.name);
    const effective = effectiveMembership(target.config.upstreams, state.snapshot);
    const pool = target.pool;
    let changed = false;
    if (!poolMatches(pool, effective.upstreams)) {
      pool.setUpstreams(effective.upstreams);
      changed = true;
    }
    const now = Date.now();
    for (const upstream of pool.list()) {
      const wanted = effective.draining.get(upstream.name);
      if (wanted === undefined) {
        state.drains.delete(upstream.name);
        if (upstream.draining) {
          pool.undrain(upstream.name);
          changed = true;
        }
        continue;
      }
      if (upstream.draining && state.drains.has(upstream.name) && state.drains.get(upstream.name) === wanted) continue;
      // An absolute deadline: every instance closes its connections at the same moment.
      pool.drain(upstream.name, wanted === null ? undefined : Math.max(0, (wanted - now) / 1000));
      state.drains.set(upstream.name, wanted);
      changed = true;
    }
    for (const name of state.drains.keys()) if (pool.get(name) === undefined) state.drains.delete(name);
    if (changed) {
      this.#options.logger.info({ listener: target.name, version: state.snapshot.version }, 'membership brought in line with the shared store');
    }
  }

  /** Read one listener's record and apply it. Rejects when the store cannot answer. */
  async refresh(listener: string): Promise<void> {
    const state = this.#state(listener);
    const seq = ++state.issued;
    const snapshot = await this.#options.store.load(listener);
    this.#accept(listener, seq, snapshot);
  }

  #accept(listener: string, seq: number, snapshot: MembershipSnapshot): void {
    const state = this.#state(listener);
    if (this.#failing) {
      this.#failing = false;
      this.#options.logger.info('shared membership readable again');
    }
    if (seq <= state.applied) return;
    state.applied = seq;
    state.snapshot = snapshot;
    const target = this.#options.listener(listener);
    if (target !== undefined) this.apply(target);
  }

  #onChange(listener: string, from: string, version: number): void {
    if (this.#closed || this.#options.listener(listener) === undefined) return;
    const state = this.#state(listener);
    // This instance's own write, applied when the store answered it.
    if (from === this.#options.store.instanceId && version <= state.snapshot.version) return;
    this.refreshSoon(listener);
  }

  /** refresh() in the background: a failure is counted and logged, the periodic read tries again. */
  refreshSoon(listener: string): void {
    this.refresh(listener).catch((err: unknown) => this.#failed(err));
  }

  #refreshAll(): void {
    if (this.#closed || !this.#options.store.connected) return;
    for (const target of this.#options.listeners()) this.refreshSoon(target.name);
  }

  /** One resync at a time; a request during one runs another after it. */
  #scheduleResync(): Promise<void> {
    if (this.#resync !== null) {
      this.#resyncAgain = true;
      return this.#resync;
    }
    this.#resync = (async () => {
      do {
        this.#resyncAgain = false;
        await this.#resyncAll();
      } while (this.#resyncAgain && !this.#closed);
    })().finally(() => {
      this.#resync = null;
    });
    return this.#resync;
  }

  async #resyncAll(): Promise<void> {
    const { store, logger } = this.#options;
    for (const target of this.#options.listeners()) {
      if (this.#closed) return;
      const state = this.#state(target.name);
      try {
        if (state.snapshot.version > 0 && (await store.restore(target.name, state.snapshot))) {
          logger.warn({ listener: target.name, version: state.snapshot.version }, 'the shared store had lost the membership: wrote back what this instance holds');
        }
        await this.refresh(target.name);
      } catch (err) {
        this.#failed(err);
      }
    }
  }

  #failed(err: unknown): void {
    this.#options.onError();
    if (this.#failing || this.#closed) return;
    this.#failing = true;
    this.#options.logger.warn({ error: errorMessage(err) }, 'cannot read the shared membership: keeping what this instance has');
  }

  #state(listener: string): ListenerState {
    let state = this.#states.get(listener);
    if (state === undefined) {
      state = { snapshot: EMPTY_SNAPSHOT, issued: 0, applied: 0, drains: new Map() };
      this.#states.set(listener, state);
    }
    return state;
  }
}

function poolMatches(pool: UpstreamPool, specs: readonly UpstreamSpec[]): boolean {
  if (pool.list().length !== specs.length) return false;
  for (const spec of specs) {
    const u = pool.get(spec.name);
    if (u === undefined || u.host !== spec.host || u.port !== spec.port || u.weight !== spec.weight) return false;
  }
  return true;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(asError(err));
      },
    );
  });
}
