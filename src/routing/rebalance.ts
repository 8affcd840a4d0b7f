/**
 * /rebalance: after a scale-out, long-lived connections stay where they were routed,
 * so new upstreams sit idle while old ones stay loaded (the classic sticky-session
 * complaint). A rebalance closes, at a bounded rate, the open connections whose key
 * now hashes to another upstream; their clients reconnect and land where the key
 * now goes. Connections routed by a learned pin or by power of two choices are never
 * touched: their placement is not the hash's to undo.
 */
import type { Logger } from 'pino';
import type { UpstreamPool } from './pool.js';
import type { RouteVia } from './types.js';
import type { Upstream } from './upstream.js';

/**
 * An open connection as a rebalance sees it. Every listener kind (tcp, http) exposes
 * its connections through this, so rebalancing knows nothing of their internals.
 */
export interface RoutedConnection {
  readonly key: string | null;
  readonly via: RouteVia;
  /** Its key is pinned where it is (TETHER_STICK): not the hash's to move. */
  readonly pinned?: boolean;
  readonly upstream: Upstream | null;
  /** Relaying bytes to its upstream (not still connecting, not closed). */
  readonly open: boolean;
  close(reason: string): void;
}

export interface RebalanceStart {
  readonly listener: string;
  /** Connections that will be closed (unless they end, or their key moves back, first). */
  readonly moving: number;
  readonly perSecond: number;
}

/** Default and bounds of `perSecond`. */
export const REBALANCE_DEFAULT_PER_SECOND = 50;
export const REBALANCE_MAX_PER_SECOND = 100_000;

/** Timer period: fine enough to spread closes evenly, coarse enough to cost nothing. */
const TICK_MIN_MS = 10;

/** Whether `c` is routed by hash to an upstream other than the one its key hashes to now. */
export function hashesElsewhere(c: RoutedConnection, pool: UpstreamPool): boolean {
  if (c.via !== 'hash' || c.pinned === true || c.key === null || c.upstream === null || !c.open) return false;
  const now = pool.primary(c.key);
  // Nothing routable: there is nowhere better to send it. Compared by name: an
  // upstream removed and added again is a new object for the same backend.
  return now !== null && now.name !== c.upstream.name;
}

/** One listener's rebalancer: at most one run at a time; a new call replaces the running one. */
export class Rebalancer {
  readonly #listener: string;
  readonly #pool: UpstreamPool;
  readonly #connections: () => Iterable<RoutedConnection>;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | null = null;
  #queue: RoutedConnection[] = [];
  /** Position in #queue of the next connection to close. */
  #next = 0;

  constructor(listener: string, pool: UpstreamPool, connections: () => Iterable<RoutedConnection>, logger: Logger) {
    this.#listener = listener;
    this.#pool = pool;
    this.#connections = connections;
    this.#logger = logger;
  }

  /** Connections still to be closed by the running rebalance (0 when none runs). */
  get pending(): number {
    return this.#timer === null ? 0 : this.#queue.length - this.#next;
  }

  /**
   * Picks the connections to move now and closes them `perSecond` a second, evenly
   * spread: the k-th closes no earlier than k / perSecond seconds from now.
   */
  start(perSecond: number): RebalanceStart {
    this.stop();
    const queue: RoutedConnection[] = [];
    for (const c of this.#connections()) if (hashesElsewhere(c, this.#pool)) queue.push(c);
    const answer = { listener: this.#listener, moving: queue.length, perSecond };
    // The listener's logger names the listener already.
    this.#logger.info({ moving: answer.moving, perSecond }, 'rebalance started');
    if (queue.length === 0) return answer;

    this.#queue = queue;
    this.#next = 0;
    const started = performance.now();
    let closed = 0;
    const tick = (): void => {
      const due = Math.min(queue.length, Math.floor(((performance.now() - started) * perSecond) / 1000));
      while (this.#next < due) {
        const c = queue[this.#next++]!;
        // Checked again: it may have ended, or the membership changed back, meanwhile.
        if (!hashesElsewhere(c, this.#pool)) continue;
        c.close('rebalance');
        closed++;
      }
      if (this.#next >= queue.length) {
        this.stop();
        this.#logger.info({ listener: this.#listener, closed, skipped: queue.length - closed }, 'rebalance done');
      }
    };
    this.#timer = setInterval(tick, Math.max(TICK_MIN_MS, 1000 / perSecond));
    this.#timer.unref();
    return answer;
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#queue = [];
    this.#next = 0;
  }
}
