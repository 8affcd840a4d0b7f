import type { CachedPins, ImmediatePins, PinStore, Store } from './types.js';

export interface GuardOptions {
  /** TETHER_STORE_TIMEOUT_MS: the longest any call may keep a connection waiting. */
  readonly timeoutMs: number;
  /** Counts a failed or timed-out call (tether_store_errors_total). */
  readonly onError: () => void;
}

/**
 * The pins a listener uses: calls never reject and never take longer than
 * `timeoutMs`. `get` answers null when the store fails or is slow, so the connection
 * routes by hash; `set`, `touch` and `delete` give up the same way (a pin not written
 * is re-learned later; a connection is never held for it). A local store needs no
 * timer: it is returned as it is.
 */
export function guardPins(store: Store, listener: string, options: GuardOptions): PinStore {
  const pins = store.pins(listener);
  if (store.local) return pins;
  const cache = cachedPins(pins);
  return cache !== null ? new GuardedCachedPins(pins as PinStore & CachedPins, options) : new GuardedPins(pins, options);
}

/** The immediate face of `pins`, or null when its calls may wait (Redis, the workers' store). */
export function immediatePins(pins: PinStore): ImmediatePins | null {
  return 'getNow' in pins && 'setNow' in pins ? (pins as PinStore & ImmediatePins) : null;
}

/** The cached face of `pins` (a worker's copy of the control plane's pins), or null. */
export function cachedPins(pins: PinStore): CachedPins | null {
  return 'cached' in pins && 'renew' in pins ? (pins as PinStore & CachedPins) : null;
}

class GuardedPins implements PinStore {
  readonly #pins: PinStore;
  readonly #timeoutMs: number;
  readonly #onError: () => void;

  constructor(pins: PinStore, options: GuardOptions) {
    this.#pins = pins;
    this.#timeoutMs = options.timeoutMs;
    this.#onError = options.onError;
  }

  get(key: string): Promise<string | null> {
    return this.#bounded(() => this.#pins.get(key), null);
  }

  set(key: string, upstream: string, ttlS: number): Promise<void> {
    return this.#bounded(() => this.#pins.set(key, upstream, ttlS), undefined);
  }

  touch(key: string, ttlS: number): Promise<void> {
    return this.#bounded(() => this.#pins.touch(key, ttlS), undefined);
  }

  delete(key: string): Promise<void> {
    return this.#bounded(() => this.#pins.delete(key), undefined);
  }

  /**
   * `call()` raced against one timer. Node keeps timers of equal duration in one list
   * under one native handle, so a timer per call is cheap next to the network round
   * trip it guards. A late answer after the timeout is dropped.
   */
  #bounded<T>(call: () => Promise<T>, fallback: T): Promise<T> {
    return new Promise<T>((resolve) => {
      let settled = false;
      const fail = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#onError();
        resolve(fallback);
      };
      const timer = setTimeout(fail, this.#timeoutMs);
      let pending: Promise<T>;
      try {
        pending = call();
      } catch {
        fail();
        return;
      }
      pending.then((value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }, fail);
    });
  }
}

/** A guard over a store with a cache: reading or renewing the copy needs no timer. */
class GuardedCachedPins extends GuardedPins implements CachedPins {
  readonly cached: (key: string) => string | null;
  readonly renew: (key: string, ttlS: number) => void;

  constructor(pins: PinStore & CachedPins, options: GuardOptions) {
    super(pins, options);
    this.cached = (key) => pins.cached(key);
    this.renew = (key, ttlS) => pins.renew(key, ttlS);
  }
}
