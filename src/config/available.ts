import type { Config } from './types.js';

/**
 * Valid settings whose machinery this release does not have yet are refused here at
 * start-up (exit 2) rather than accepted and silently ignored. Everything the contract
 * names has shipped (http mode, the Redis store), so nothing is refused now; the hook
 * stays, called where configurations are accepted, for the next setting that lands
 * before its machinery.
 */
export function assertAvailable(_config: Config, _env: NodeJS.ProcessEnv = process.env): void {}
