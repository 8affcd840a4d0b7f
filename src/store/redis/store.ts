/**
 * The Redis store: learned pins and shared membership, for several tether instances
 * that must route alike.
 *
 * Keys (PREFIX is TETHER_REDIS_PREFIX, `tether:` by default):
 *   PREFIX pin:LISTENER:DIGEST      string, the upstream's name, with a TTL (SET EX,
 *                                   renewed by EXPIRE). DIGEST is sha256(key) in
 *                                   base64url: Redis never holds a raw session id.
 *   PREFIX membership:LISTENER      hash: `v` (version, bumped by every write),
 *                                   `m:UPSTREAM` (MemberRecord JSON), `d:UPSTREAM`
 *                                   (DrainRecord JSON). No TTL.
 *   PREFIX membership               pub/sub channel: {"from", "listener", "version"}
 *                                   after every write.
 * Every key is a single key (no multi-key command), so Redis Cluster needs no hash tags.
 */
import type { Logger } from 'pino';
import type { MembershipStore, PinStore, Store } from '../types.js';
import { createRedisClient, describeRedis, scrubSecrets, type RedisClient, type RedisStoreConfig } from './client.js';

import { RedisMembership } from './membership.js';
import { RedisPins } from './pins.js';
export interface RedisStoreOptions {
  readonly config: RedisStoreConfig;
  /** TETHER_REDIS_PREFIX. */
  readonly prefix: string;
  /** Bound on any one command (a connection that hangs); see createRedisClient. */
  readonly commandTimeoutMs: number;
  readonly logger: Logger;
  /** Counts a failed connection attempt (tether_store_errors_total). */
  readonly onError: () => void;
}

/**
 * Two connections: commands, and one in subscriber mode for announcements (Redis
 * takes no other command on a subscribed connection). Connection trouble is logged
 * once when it starts and once when it ends, counted every time.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly local = false;
  readonly membership: MembershipStore;
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #prefix: string;
  readonly #pins = new Map<string, RedisPins>();
  #closing = false;

  constructor(options: RedisStoreOptions) {
    const { config, logger } = options;
    this.#prefix = options.prefix;
    this.#client = createRedisClient(config, options.commandTimeoutMs);
    this.#subscriber = this.#client.duplicate();
    const where = describeRedis(config);
    let down = false;
    this.#client.on('ready', () => {
      if (down) logger.info({ redis: where }, 'store reachable again');
      else logger.info({ redis: where }, 'store connected');
      down = false;
    });
    this.#client.on('error', (err: Error) => {
      if (this.#closing) return;
      options.onError();
      if (down) return;
      down = true;
      logger.warn({ redis: where, error: scrubSecrets(err.message, config) }, 'store unreachable: routing by hash until it returns');
    });
    // Trouble shows on the command connection; this one's errors would only repeat it.
    this.#subscriber.on('error', () => {});
    this.membership = new RedisMembership(this.#client, this.#subscriber, options.prefix, logger);
  }

  pins(listener: string): PinStore {
    let pins = this.#pins.get(listener);
    if (pins === undefined) {
      pins = new RedisPins(this.#client, this.#prefix, listener);
      this.#pins.set(listener, pins);
    }
    return pins;
  }

  async close(): Promise<void> {
    this.#closing = true;
    // disconnect(), not quit(): quit waits for an answer a down Redis never gives.
    this.#subscriber.disconnect();
    this.#client.disconnect();
  }
}
