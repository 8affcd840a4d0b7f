import type { PinStore, Store } from './types.js';

interface Pin {
  upstream: string;
  /** performance.now() milliseconds. */
  expiresAt: number;
}

/** How often expired pins are swept (they are also ignored on read). */
const SWEEP_INTERVAL_MS = 30_000;

/** One listener's pins in a Map; expiry checked on read, swept in the background. */
class MemoryPins implements PinStore {
  readonly #pins = new Map<string, Pin>();

  get size(): number {
    return this.#pins.size;
  }

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.getNow(key));
  }

  getNow(key: string): string | null {
    const pin = this.#pins.get(key);
    if (pin === undefined) return null;
    if (pin.expiresAt <= performance.now()) {
      this.#pins.delete(key);
      return null;
    }
    return pin.upstream;
  }

  set(key: string, upstream: string, ttlS: number): Promise<void> {
    this.#pins.set(key, { upstream, expiresAt: performance.now() + ttlS * 1000 });
    return Promise.resolve();
  }

  touch(key: string, ttlS: number): Promise<void> {
    const pin = this.#pins.get(key);
    if (pin !== undefined && pin.expiresAt > performance.now()) pin.expiresAt = performance.now() + ttlS * 1000;
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.#pins.delete(key);
    return Promise.resolve();
  }

  sweep(now: number): void {
    for (const [key, pin] of this.#pins) if (pin.expiresAt <= now) this.#pins.delete(key);
  }
}

/** The default store: pins in this process only. */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly local = true;
  /** Nothing to share: admin changes stay in this process. */
  readonly membership = null;
  readonly #byListener = new Map<string, MemoryPins>();
  readonly #sweeper: NodeJS.Timeout;

  constructor() {
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      for (const pins of this.#byListener.values()) pins.sweep(now);
    }, SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  pins(listener: string): PinStore {
    let pins = this.#byListener.get(listener);
    if (pins === undefined) {
      pins = new MemoryPins();
      this.#byListener.set(listener, pins);
    }
    return pins;
  }

  close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#byListener.clear();
    return Promise.resolve();
  }
}
