/**
 * Keeps every worker's membership equal to the control plane's, one version per
 * listener: any change to a pool here (admin call, health check, file reload, the
 * shared store) is sent as a whole snapshot at the end of the turn it happened in,
 * and an admin call waits (settled) until every live worker has said it routes by
 * the version that holds the change.
 */
import type { UpstreamPool } from '../routing/pool.js';
import { snapshotOf } from './membership-snapshot.js';
import type { MembershipMessage } from './messages.js';
import type { WorkerHandle, WorkerSet } from './worker-set.js';

/** The longest an admin call waits for the workers (as it waits for its own table: admin/server.ts). */
export const SETTLE_WAIT_MS = 5_000;

interface Waiter {
  readonly listener: string;
  readonly version: number;
  readonly done: () => void;
}

export interface BroadcastTarget {
  readonly name: string;
  readonly pool: UpstreamPool;
}

export class MembershipBroadcaster {
  readonly #workers: WorkerSet;
  /** The listeners by name, as the control plane's Tether has them now. */
  readonly #listeners: () => readonly BroadcastTarget[];
  readonly #versions = new Map<string, number>();
  readonly #dirty = new Set<string>();
  readonly #pools = new WeakSet<UpstreamPool>();
  readonly #waiters = new Set<Waiter>();
  #flushQueued = false;

  constructor(workers: WorkerSet, listeners: () => readonly BroadcastTarget[]) {
    this.#workers = workers;
    this.#listeners = listeners;
  }

  /** Follow a listener's pool: its changes reach the workers. */
  watch(target: BroadcastTarget): void {
    if (this.#pools.has(target.pool)) return;
    this.#pools.add(target.pool);
    target.pool.onChange(() => this.#changed(target.name));
  }

  /** A worker said hello: every listener's membership as it is, at the version it has. */
  greet(handle: WorkerHandle): void {
    for (const target of this.#listeners()) this.#workers.send(handle, this.#message(target, this.#versions.get(target.name) ?? 0));
  }

  /** Every listener's membership again, at a new version (after a reload). */
  sendAll(): void {
    for (const target of this.#listeners()) this.#send(target);
  }

  /**
   * Sends `listener`'s membership now, at a new version, and resolves once every live
   * worker routes by it, or after SETTLE_WAIT_MS.
   */
  settled(listener: string): Promise<void> {
    const target = this.#listeners().find((t) => t.name === listener);
    if (target === undefined) return Promise.resolve();
    const version = this.#send(target);
    return new Promise((resolve) => {
      const timer = setTimeout(() => waiter.done(), SETTLE_WAIT_MS);
      const waiter: Waiter = {
        listener,
        version,
        done: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve();
        },
      };
      this.#waiters.add(waiter);
      this.#check(waiter);
    });
  }

  /** A worker acknowledged a version, or exited: waiters it held up may be done. */
  recheck(): void {
    for (const waiter of [...this.#waiters]) this.#check(waiter);
  }

  #check(waiter: Waiter): void {
    // Workers that have not said hello get the newest membership when they do.
    const behind = this.#workers.handles().some((h) => h.greeted && (h.applied.get(waiter.listener) ?? -1) < waiter.version);
    if (!behind) waiter.done();
  }

  #changed(listener: string): void {
    this.#dirty.add(listener);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // Once per turn: a burst of changes (a reload, 50 admin calls) is one snapshot.
    setImmediate(() => {
      this.#flushQueued = false;
      const dirty = [...this.#dirty];
      this.#dirty.clear();
      for (const target of this.#listeners()) if (dirty.includes(target.name)) this.#send(target);
    });
  }

  #send(target: BroadcastTarget): number {
    this.#dirty.delete(target.name);
    const version = (this.#versions.get(target.name) ?? 0) + 1;
    this.#versions.set(target.name, version);
    this.#workers.broadcast(this.#message(target, version));
    return version;
  }

  #message(target: BroadcastTarget, version: number): MembershipMessage {
    return { type: 'membership', listener: target.name, version, upstreams: snapshotOf(target.pool) };
  }
}
