/**
 * tether: a Layer-4 TCP and WebSocket balancer with session affinity.
 * `createBalancer(config)` is the one public entry; settings come from `loadConfig()`.
 */
import type { Logger } from 'pino';
import { assertAvailable } from './config/available.js';
import type { Config } from './config/types.js';
import { createLogger } from './log.js';
import { Tether } from './app/tether.js';

export { loadConfig } from './config/load.js';
export type * from './config/types.js';
export { ConfigError, TetherError, type TetherErrorCode } from './errors.js';
export type { Tether, RecentChange } from './app/tether.js';
export type { ListenerRuntime } from './app/listener-runtime.js';

export interface CreateOptions {
  /** A pino logger; by default one at config.logLevel writing JSON to stdout. */
  readonly logger?: Logger;
}

/** Start every listener (and the admin API) of `config`; resolves once all are bound. */
export function createBalancer(config: Config, options: CreateOptions = {}): Promise<Tether> {
  assertAvailable(config, {});
  const logger = options.logger ?? createLogger(config.logLevel);
  return Tether.start(config, { logger });
}
