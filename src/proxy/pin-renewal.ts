import type { PinStore } from '../store/types.js';
import type { Session } from './session.js';

/** How often pins of long-lived upgraded connections are renewed, at most. */
const RENEW_MAX_MS = 60_000;

/**
 * Pins that open upgraded connections were routed by stay alive while those are
 * open (docs/routing.md, rule 12): renewed a few times per TTL, and the TTL runs again
 * from the last one's close.
 */
export class PinRenewal {
  readonly #pins: PinStore;
  readonly #ttlS: () => number;
  /** Keys of open upgraded connections routed by a pin. */
  readonly #pinned = new Map<Session, string>();
  #timer: NodeJS.Timeout | null = null;

  constructor(pins: PinStore, ttlS: () => number) {
    this.#pins = pins;
    this.#ttlS = ttlS;
  }

  /** `session` was routed by the pin for `key`. */
  hold(session: Session, key: string): void {
    this.#pinned.set(session, key);
    if (this.#timer === null) this.#start();
  }

  /** `session` closed: its pin's TTL runs from now. */
  release(session: Session): void {
    const key = this.#pinned.get(session);
    if (key === undefined) return;
    this.#pinned.delete(session);
    void this.#pins.touch(key, this.#ttlS());
  }

  /** TETHER_STICKY_TTL_S changed: renew at the new pace. */
  ttlChanged(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    if (this.#pinned.size > 0) this.#start();
  }

  #start(): void {
    this.#timer = setInterval(() => this.#renew(), Math.min(RENEW_MAX_MS, (this.#ttlS() * 1000) / 3));
    this.#timer.unref();
  }

  #renew(): void {
    if (this.#pinned.size === 0) {
      clearInterval(this.#timer!);
      this.#timer = null;
      return;
    }
    const ttlS = this.#ttlS();
    for (const key of new Set(this.#pinned.values())) void this.#pins.touch(key, ttlS);
  }
}
