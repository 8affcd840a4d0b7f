/**
 * A listener's membership as the control plane sends it (snapshotOf) and as a worker
 * takes it (applySnapshot). Whole snapshots, not changes: a worker that missed one
 * (replaced, slow) is made right by the next, and tables derive from names and
 * weights alone, so every worker that applied version v routes every key alike.
 */
import type { UpstreamPool } from '../routing/pool.js';
import type { UpstreamSnapshot } from './messages.js';

/** A drain deadline that moved less than this is the same deadline (clocks read at different moments). */
const DEADLINE_SLACK_MS = 5;

export function snapshotOf(pool: UpstreamPool): UpstreamSnapshot[] {
  return pool.list().map((u) => ({
    name: u.name,
    host: u.host,
    port: u.port,
    weight: u.weight,
    healthy: u.healthy,
    draining: u.draining,
    drainDeadlineAt: u.drainDeadlineAt,
  }));
}

/** Make `pool` hold exactly `upstreams`: members, addresses, weights, health, drains. */
export function applySnapshot(pool: UpstreamPool, upstreams: readonly UpstreamSnapshot[], now = Date.now()): void {
  pool.setUpstreams(upstreams);
  for (const wanted of upstreams) {
    const upstream = pool.get(wanted.name)!;
    pool.setHealth(wanted.name, wanted.healthy, 'control plane');
    if (!wanted.draining) {
      if (upstream.draining) pool.undrain(wanted.name);
      continue;
    }
    if (upstream.draining && sameDeadline(upstream.drainDeadlineAt, wanted.drainDeadlineAt)) continue;
    pool.drain(wanted.name, wanted.drainDeadlineAt === null ? undefined : Math.max(0, wanted.drainDeadlineAt - now) / 1000);
  }
}

function sameDeadline(a: number | null, b: number | null): boolean {
  return a === null || b === null ? a === b : Math.abs(a - b) < DEADLINE_SLACK_MS;
}
