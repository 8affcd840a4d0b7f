import { availableParallelism } from 'node:os';
import type { Config } from '../config/types.js';
import { listenSocketFor } from '../net/reuse-port.js';

/** How many relaying processes TETHER_WORKERS asks for here (`auto`: one per CPU). */
export function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/**
 * For `tether check`: what TETHER_WORKERS will run here, how the workers accept on
 * this Node, and when it is worth it; null with one process.
 */
export function workersNote(config: Config): string | null {
  const count = workerCount(config);
  if (count === 1) return null;
  const own = config.listeners.every((l) => listenSocketFor(true, l.listen.port) === 'reuseport');
  const accept = own
    ? 'each accepting on a listening socket of its own (SO_REUSEPORT), spread evenly by the kernel'
    : `accepting on one shared listening socket on Node ${process.versions.node} (on Linux, Node 22.12 or later with fixed ports gives each its own, spread more evenly)`;
  return (
    `TETHER_WORKERS=${config.workers}: a control plane (admin API, health checks, membership, store, metrics) and ${count} workers ` +
    `that accept and relay (of ${availableParallelism()} CPUs here), plus a standby, ${accept}; worth it when one relaying core is busy`
  );
}
