import type { UpstreamPool } from '../../routing/pool.js';
import { routeByCachedPin, routeWithPins, routeWithPinsNow } from '../../routing/router.js';
import type { RouteDecision } from '../../routing/types.js';
import type { Upstream } from '../../routing/upstream.js';
import { cachedPins, immediatePins } from '../../store/guard.js';
import type { CachedPins, ImmediatePins, PinStore } from '../../store/types.js';
import { PinRenewal } from '../pin-renewal.js';
import type { Session } from '../session.js';

/**
 * TETHER_STICK=on in tcp mode: a key's first upstream becomes a learned pin, so a
 * scale-out moves no key that has one. The pin is written once the upstream has
 * answered (a failed connect pins nothing), renewed by every connection routed by
 * it, and kept alive while any of them is open.
 */
export class Stick {
  readonly #pins: PinStore;
  /** The same pins when they answer at once (memory store). */
  readonly #now: ImmediatePins | null;
  /** Otherwise, this process's copy of them (TETHER_WORKERS with the memory store). */
  readonly #cache: CachedPins | null;
  readonly #ttlS: () => number;
  readonly #renewal: PinRenewal;

  constructor(pins: PinStore, ttlS: () => number) {
    this.#pins = pins;
    this.#now = immediatePins(pins);
    this.#cache = this.#now === null ? cachedPins(pins) : null;
    this.#ttlS = ttlS;
    this.#renewal = new PinRenewal(pins, ttlS);
  }

  /** The key's pin first (dropped when its upstream is down or gone), else the pool. */
  route(pool: UpstreamPool, key: string, maxCandidates: number): RouteDecision | Promise<RouteDecision> {
    if (this.#now !== null) return routeWithPinsNow(pool, this.#now, key, maxCandidates, this.#ttlS());
    if (this.#cache !== null) {
      const decision = routeByCachedPin(pool, this.#cache, key, maxCandidates, this.#ttlS());
      if (decision !== null) return decision;
    }
    return routeWithPins(pool, this.#pins, key, maxCandidates, this.#ttlS());
  }

  /** `session` (which has a key) reached its upstream: pin the key there, if not already. */
  opened(session: Session, key: string): void {
    const upstream = session.upstream!;
    if (session.via !== 'learned' || session.candidates[0] !== upstream) void this.#pins.set(key, upstream.name, this.#ttlS());
    session.pinned = true;
    this.#renewal.hold(session, key);
  }

  /** A pin to an upstream that failed is dropped (docs/routing.md, rule 5). */
  failed(session: Session, upstream: Upstream): void {
    if (session.via === 'learned' && session.key !== null && session.candidates[0] === upstream) void this.#pins.delete(session.key);
  }

  /** `session` closed: its pin's TTL runs from now. */
  ended(session: Session): void {
    if (session.pinned) this.#renewal.release(session);
  }

  ttlChanged(): void {
    this.#renewal.ttlChanged();
  }
}
