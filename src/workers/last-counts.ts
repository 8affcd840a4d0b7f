/**
 * What the control plane last read of each worker's counts (a scrape's families, the
 * stats page's snapshot), so that a worker that dies leaves them in the instance's
 * totals: its counters stay in /metrics (Departed), its counts on the stats page
 * (addDeparted). Counts made after the last read die with it.
 */
import type { StatsSnapshot } from '../admin/page/stats.js';
import { Departed, type Exposition } from './metrics-merge.js';
import { addDeparted } from './stats-merge.js';

export class LastCounts<Handle> {
  readonly #metrics = new Map<Handle, Exposition>();
  readonly #stats = new Map<Handle, StatsSnapshot>();
  /** Dead workers' counters, added to every scrape's sums. */
  readonly departedMetrics = new Departed();
  #departedStats: StatsSnapshot | null = null;

  /** A scrape answered: its families (those asked for) replace the worker's earlier ones. */
  sawMetrics(handle: Handle, exposition: Exposition): void {
    let last = this.#metrics.get(handle);
    if (last === undefined) this.#metrics.set(handle, (last = new Map()));
    for (const [name, family] of exposition) last.set(name, family);
  }

  /** The stats page's question answered. */
  sawStats(handle: Handle, snapshot: StatsSnapshot): void {
    this.#stats.set(handle, snapshot);
  }

  /** Dead workers' counts as one snapshot (open connections left out), or null. */
  get departedStats(): StatsSnapshot | null {
    return this.#departedStats;
  }

  /** The worker is gone: what was last read of it joins the departed. */
  gone(handle: Handle): void {
    const metrics = this.#metrics.get(handle);
    if (metrics !== undefined) this.departedMetrics.add(metrics);
    this.#metrics.delete(handle);
    const stats = this.#stats.get(handle);
    if (stats !== undefined) this.#departedStats = addDeparted(this.#departedStats, stats);
    this.#stats.delete(handle);
  }
}
