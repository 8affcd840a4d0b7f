import { availableParallelism } from 'node:os';
import type { Config } from '../config/types.js';

/** How many relaying processes TETHER_WORKERS asks for here (`auto`: one per CPU). */
export function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** For `tether check`: what TETHER_WORKERS will run here, and when it is worth it; null with one process. */
export function workersNote(config: Config): string | null {
  const count = workerCount(config);
  if (count === 1) return null;
  return (
    `TETHER_WORKERS=${config.workers}: a control plane (admin API, health checks, membership, store, metrics) and ${count} workers ` +
    `that accept and relay (of ${availableParallelism()} CPUs here), plus a standby; worth it when one relaying core is busy`
  );
}
