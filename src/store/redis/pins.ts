/** Learned pins in Redis: `PREFIX pin:LISTENER:DIGEST` strings with a TTL (store.ts has the key layout). */
import { createHash } from 'node:crypto';
import type { PinStore } from '../types.js';
import { type RedisClient } from './client.js';

/** A pin key as stored: hashed, so Redis never holds a raw key. */
export function pinDigest(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

export class RedisPins implements PinStore {
  readonly #client: RedisClient;
  readonly #prefix: string;

  constructor(client: RedisClient, prefix: string, listener: string) {
    this.#client = client;
    this.#prefix = `${prefix}pin:${listener}:`;
  }

  get(key: string): Promise<string | null> {
    return this.#client.get(this.#prefix + pinDigest(key));
  }

  async set(key: string, upstream: string, ttlS: number): Promise<void> {
    await this.#client.set(this.#prefix + pinDigest(key), upstream, 'EX', ttlS);
  }

  async touch(key: string, ttlS: number): Promise<void> {
    // EXPIRE on a key that is gone does nothing: an expired pin is not revived.
    await this.#client.expire(this.#prefix + pinDigest(key), ttlS);
  }

  async delete(key: string): Promise<void> {
    await this.#client.del(this.#prefix + pinDigest(key));
  }
}

/**
 * Apply field changes, bump the version, announce it, return the hash: one atomic
 * step, so the announcement and the state it announces cannot be told apart.
 * KEYS[1] hash; ARGV: channel, instance id, listener, then (op, field, value) triples.
 */
