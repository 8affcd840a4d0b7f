import type { Config } from '../config/types.js';
import { MemoryStore } from './memory-store.js';
import type { Store } from './store.js';

export type { PinStore, Store } from './store.js';
export { MemoryStore } from './memory-store.js';

/** The store TETHER_STORE names. */
export function createStore(config: Config): Store {
  switch (config.store.kind) {
    case 'memory':
      return new MemoryStore();
    case 'redis':
      // Refused earlier by assertAvailable until the Redis backend lands.
      throw new Error('the Redis store is not available yet');
  }
}
