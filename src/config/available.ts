import { ConfigError } from '../errors.js';
import type { Config } from './types.js';

/**
 * Valid settings whose machinery this release does not have yet. Refused at start-up
 * (exit 2) rather than accepted and silently ignored: an `http` listener must not
 * quietly act as `tcp`, nor a shared store as a private one. Kept apart from parsing,
 * which accepts everything the contract names.
 */
export function assertAvailable(config: Config, env: NodeJS.ProcessEnv = process.env): void {
  const fromEnv = (name: string): boolean => (env[name] ?? '').trim() !== '';
  config.listeners.forEach((listener, i) => {
    if (listener.mode !== 'http') return;
    const variable = i === 0 && fromEnv('TETHER_MODE') ? 'TETHER_MODE' : 'TETHER_CONFIG';
    const value = variable === 'TETHER_MODE' ? 'http' : `listener "${listener.name}" mode http`;
    throw new ConfigError(variable, value, 'tcp (http mode is not in this release yet)');
  });
  if (config.store.kind === 'redis') {
    const variable = fromEnv('TETHER_STORE') ? 'TETHER_STORE' : 'TETHER_CONFIG';
    throw new ConfigError(variable, config.store.redacted, 'memory (the Redis store is not in this release yet)');
  }
}
