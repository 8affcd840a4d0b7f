import type { ImmediatePins, PinStore, Store } from './types.js';

/** A pin, linked into its listener's order of use. */
interface Pin {
  readonly key: string;
  upstream: string;
  /** performance.now() milliseconds. */
  expiresAt: number;
  /** Toward the least recently used, and toward the most. */
  older: Pin | null;
  newer: Pin | null;
}

/** How often expired pins are swept (they are also ignored on read). */
const SWEEP_INTERVAL_MS = 30_000;

export interface MemoryStoreOptions {
  /** TETHER_STICKY_MAX: the most pins held, every listener's together. */
  readonly maxPins?: number;
  /** A pin was evicted to make room (tether_pins_evicted_total; with TETHER_WORKERS, the workers' caches drop it too). */
  readonly onEvict?: (listener: string, key: string) => void;
}

/** What every listener's pins share: the bound on their number. */
interface Budget {
  readonly max: number;
  count: number;
  readonly onEvict: (listener: string, key: string) => void;
  readonly lists: Map<string, MemoryPins>;
}

/**
 * One listener's pins in a Map; expiry checked on read, swept in the background.
 * The pins are also linked in order of last use, so the least recently used is
 * found in O(1) when the store is full. (Not the Map's own insertion order: V8
 * leaves deleted entries in place until it rehashes, and finding the first live
 * entry behind a run of them made a full store's every insert slow.)
 */
class MemoryPins implements PinStore, ImmediatePins {
  readonly listener: string;
  readonly #pins = new Map<string, Pin>();
  readonly #budget: Budget;
  #oldest: Pin | null = null;
  #newest: Pin | null = null;

  constructor(budget: Budget, listener: string) {
    this.#budget = budget;
    this.listener = listener;
  }

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
      this.#remove(pin);
      return null;
    }
    this.#used(pin);
    return pin.upstream;
  }

  set(key: string, upstream: string, ttlS: number): Promise<void> {
    this.setNow(key, upstream, ttlS);
    return Promise.resolve();
  }

  setNow(key: string, upstream: string, ttlS: number): void {
    const expiresAt = performance.now() + ttlS * 1000;
    const pin = this.#pins.get(key);
    if (pin !== undefined) {
      pin.upstream = upstream;
      pin.expiresAt = expiresAt;
      this.#used(pin);
      return;
    }
    const added: Pin = { key, upstream, expiresAt, older: null, newer: null };
    this.#pins.set(key, added);
    this.#link(added);
    const budget = this.#budget;
    if (++budget.count > budget.max) evictOne(budget, this);
  }

  touch(key: string, ttlS: number): Promise<void> {
    this.touchNow(key, ttlS);
    return Promise.resolve();
  }

  touchNow(key: string, ttlS: number): void {
    const pin = this.#pins.get(key);
    if (pin !== undefined && pin.expiresAt > performance.now()) {
      pin.expiresAt = performance.now() + ttlS * 1000;
      this.#used(pin);
    }
  }

  delete(key: string): Promise<void> {
    this.deleteNow(key);
    return Promise.resolve();
  }

  deleteNow(key: string): void {
    const pin = this.#pins.get(key);
    if (pin !== undefined) this.#remove(pin);
  }

  sweep(now: number): void {
    for (const pin of this.#pins.values()) if (pin.expiresAt <= now) this.#remove(pin);
  }

  /** Drop the least recently used pin; its key, or null when there is none. */
  evictOldest(): string | null {
    const oldest = this.#oldest;
    if (oldest === null) return null;
    this.#remove(oldest);
    return oldest.key;
  }

  clear(): void {
    this.#budget.count -= this.#pins.size;
    this.#pins.clear();
    this.#oldest = null;
    this.#newest = null;
  }

  /** Moved to the newest end of the order. */
  #used(pin: Pin): void {
    if (pin === this.#newest) return;
    this.#unlink(pin);
    this.#link(pin);
  }

  #link(pin: Pin): void {
    pin.older = this.#newest;
    pin.newer = null;
    if (this.#newest !== null) this.#newest.newer = pin;
    else this.#oldest = pin;
    this.#newest = pin;
  }

  #unlink(pin: Pin): void {
    if (pin.older !== null) pin.older.newer = pin.newer;
    else this.#oldest = pin.newer;
    if (pin.newer !== null) pin.newer.older = pin.older;
    else this.#newest = pin.older;
    pin.older = null;
    pin.newer = null;
  }

  #remove(pin: Pin): void {
    if (this.#pins.get(pin.key) !== pin) return;
    this.#pins.delete(pin.key);
    this.#unlink(pin);
    this.#budget.count--;
  }
}

/**
 * Make room after `writer` added a pin: its own least recently used pin goes (the
 * one just added is last, so it stays unless it is the listener's only pin); then
 * the largest other listener's.
 */
function evictOne(budget: Budget, writer: MemoryPins): void {
  let victim: MemoryPins | null = writer.size > 1 ? writer : null;
  if (victim === null) {
    for (const pins of budget.lists.values()) if (pins !== writer && (victim === null || pins.size > victim.size)) victim = pins;
  }
  const from = victim ?? writer;
  const key = from.evictOldest();
  if (key !== null) budget.onEvict(from.listener, key);
}

/** The default store: pins in this process only, at most TETHER_STICKY_MAX of them. */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly local = true;
  /** Nothing to share: admin changes stay in this process. */
  readonly membership = null;
  readonly #budget: Budget;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryStoreOptions = {}) {
    this.#budget = { max: options.maxPins ?? Infinity, count: 0, onEvict: options.onEvict ?? noop, lists: new Map() };
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      for (const pins of this.#budget.lists.values()) pins.sweep(now);
    }, SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  /** Pins held now, every listener's (expired ones until swept or read). */
  get size(): number {
    return this.#budget.count;
  }

  pins(listener: string): PinStore {
    const lists = this.#budget.lists;
    let pins = lists.get(listener);
    if (pins === undefined) {
      pins = new MemoryPins(this.#budget, listener);
      lists.set(listener, pins);
    }
    return pins;
  }

  close(): Promise<void> {
    clearInterval(this.#sweeper);
    for (const pins of this.#budget.lists.values()) pins.clear();
    this.#budget.lists.clear();
    return Promise.resolve();
  }
}

function noop(): void {}
