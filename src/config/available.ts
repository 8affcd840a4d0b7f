import { ConfigError } from '../errors.js';
import type { Config } from './types.js';

/**
 * Valid settings whose machinery this release does not have yet. Refused at start-up
 * (exit 2) rather than accepted and silently ignored: a shared store must not quietly
 * act as a private one. Kept apart from parsing, which accepts everything the
 * contract names.
 */
export function assertAvailable(config: Config, env: NodeJS.ProcessEnv = process.env): void {
  const fromEnv = (name: string): boolean => (env[name] ?? '').trim() !== '';
  if (config.store.kind === 'redis') {
    const variable = fromEnv('TETHER_STORE') ? 'TETHER_STORE' : 'TETHER_CONFIG';
    throw new ConfigError(variable, config.store.redacted, 'memory (the Redis store is not in this release yet)');
  }
}
