import { availableParallelism } from 'node:os';
import type { Config } from '../config/types.js';

/** How many relaying processes TETHER_WORKERS asks for here (`auto`: one per CPU). */
export function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}
