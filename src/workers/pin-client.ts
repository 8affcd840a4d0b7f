/**
 * A worker's learned pins with TETHER_STORE=memory: the control plane holds them
 * (pin-service.ts); this store keeps a cache that the control plane's broadcasts keep
 * true, so a pin in use is read without a round trip. A read the cache cannot answer
 * asks the control plane; a write goes through to it and is answered once stored;
 * touches go in batches (pins live for TETHER_STICKY_TTL_S: a second's delay in
 * renewing one is nothing). Not `local`: store/guard.ts bounds every call by
 * TETHER_STORE_TIMEOUT_MS and routes by hash when the control plane is slow, as it
 * does for Redis.
 */
import { MemoryStore } from '../store/memory.js';
import { immediatePins } from '../store/guard.js';
import type { CachedPins, PinStore, Store } from '../store/types.js';
import { Asker } from './ask.js';
import type { PinAnswers, ToControlPlane } from './messages.js';

/** Touches are sent this often, at most. */
const TOUCH_BATCH_MS = 1_000;
/** A read the control plane never answers is given up after this (the guard has long answered null). */
const ASK_TIMEOUT_MS = 5_000;
/** A pin read from the control plane is cached this long unless it is used (a use renews it). */
const READ_CACHE_S = 1;

export class IpcPinStore implements Store {
  readonly kind = 'memory';
  readonly local = false;
  readonly membership = null;
  readonly #cache: MemoryStore;
  readonly #send: (message: ToControlPlane) => boolean;
  readonly #asker = new Asker<PinAnswers>();
  readonly #pins = new Map<string, PinStore>();
  /** Keys touched since the last batch, by listener and TTL. */
  readonly #touched = new Map<string, Map<number, Set<string>>>();
  #touchTimer: NodeJS.Timeout | null = null;
  /** pin-get questions awaiting an answer, and the pins heard of meanwhile (listener NUL key). */
  #asking = 0;
  readonly #heardWhileAsking = new Set<string>();

  /** `send`: to the control plane; false when the channel is closed. */
  constructor(maxPins: number, send: (message: ToControlPlane) => boolean) {
    this.#cache = new MemoryStore({ maxPins });
    this.#send = send;
  }

  pins(listener: string): PinStore {
    let pins = this.#pins.get(listener);
    if (pins === undefined) {
      pins = this.#listenerPins(listener, this.#cache.pins(listener));
      this.#pins.set(listener, pins);
    }
    return pins;
  }

  /** The control plane's answer to a pin-get or pin-set. */
  answered(id: number, answer: PinAnswers[keyof PinAnswers]): void {
    this.#asker.answered(id, answer);
  }

  /** A pin set (upstream) or deleted (null) through another worker. */
  heard(listener: string, key: string, upstream: string | null, ttlS: number): void {
    if (this.#asking > 0) this.#heardWhileAsking.add(`${listener}\0${key}`);
    const cache = this.#cache.pins(listener);
    void (upstream === null ? cache.delete(key) : cache.set(key, upstream, ttlS));
  }

  close(): Promise<void> {
    this.#flushTouches();
    return this.#cache.close();
  }

  #listenerPins(listener: string, cache: PinStore): PinStore & CachedPins {
    // The cache is a MemoryStore's: it answers at once.
    const now = immediatePins(cache)!;
    return {
      cached: (key) => now.getNow(key),
      renew: (key, ttlS) => {
        now.touchNow(key, ttlS);
        this.#touch(listener, key, ttlS);
      },
      get: async (key) => {
        const cached = await cache.get(key);
        if (cached !== null) return cached;
        this.#asking++;
        const answer = await this.#asker.ask<'pin-get'>(this, (id) => this.#send({ type: 'pin-get', id, listener, key }), ASK_TIMEOUT_MS);
        // Messages read in one go are handled before this resumes: a pin set or deleted
        // since the question (a broadcast) is newer than the answer, and the cache has it.
        const overtaken = this.#heardWhileAsking.has(`${listener}\0${key}`);
        if (--this.#asking === 0) this.#heardWhileAsking.clear();
        if (overtaken) return cache.get(key);
        const upstream = answer?.upstream ?? null;
        if (upstream !== null) await cache.set(key, upstream, READ_CACHE_S);
        return upstream;
      },
      set: async (key, upstream, ttlS) => {
        await cache.set(key, upstream, ttlS);
        await this.#asker.ask<'pin-set'>(this, (id) => this.#send({ type: 'pin-set', id, listener, key, upstream, ttlS }), ASK_TIMEOUT_MS);
      },
      touch: async (key, ttlS) => {
        await cache.touch(key, ttlS);
        this.#touch(listener, key, ttlS);
      },
      delete: async (key) => {
        await cache.delete(key);
        this.#send({ type: 'pin-delete', listener, key });
      },
    };
  }

  #touch(listener: string, key: string, ttlS: number): void {
    let byTtl = this.#touched.get(listener);
    if (byTtl === undefined) this.#touched.set(listener, (byTtl = new Map()));
    let keys = byTtl.get(ttlS);
    if (keys === undefined) byTtl.set(ttlS, (keys = new Set()));
    keys.add(key);
    if (this.#touchTimer !== null) return;
    this.#touchTimer = setTimeout(() => this.#flushTouches(), TOUCH_BATCH_MS);
    this.#touchTimer.unref();
  }

  #flushTouches(): void {
    if (this.#touchTimer !== null) clearTimeout(this.#touchTimer);
    this.#touchTimer = null;
    for (const [listener, byTtl] of this.#touched) {
      for (const [ttlS, keys] of byTtl) this.#send({ type: 'pin-touch', listener, keys: [...keys], ttlS });
    }
    this.#touched.clear();
  }
}
