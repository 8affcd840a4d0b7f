import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { MemoryStore } from './memory.js';
import { RedisStore } from './redis/store.js';
import type { Store } from './types.js';

export interface StoreOptions {
  readonly logger: Logger;
  /** Counts a store failure (tether_store_errors_total). */
  readonly onError: () => void;
  /** Counts a pin the memory store evicted to stay within TETHER_STICKY_MAX. */
  readonly onEvict?: (listener: string, key: string) => void;
}

/**
 * The longest any Redis command may take on a connection that hangs. Connections
 * never wait this long (they race TETHER_STORE_TIMEOUT_MS, guard.ts); it only keeps
 * abandoned commands from piling up, and bounds admin writes.
 */
export function commandTimeoutMs(config: Config): number {
  return Math.max(1_000, config.storeTimeoutMs);
}

/** The store TETHER_STORE names. */
export function createStore(config: Config, options: StoreOptions): Store {
  switch (config.store.kind) {
    case 'memory':
      return new MemoryStore({ maxPins: config.stickyMax, onEvict: options.onEvict });
    case 'redis':
      return new RedisStore({
        config: config.store,
        prefix: config.redisPrefix,
        commandTimeoutMs: commandTimeoutMs(config),
        logger: options.logger,
        onError: options.onError,
      });
  }
}
