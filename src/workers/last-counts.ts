/**
 * What the control plane last read of each worker's counts (a scrape's families, the
 * stats page's snapshot, or its own reads every COUNTS_READ_MS), so that a worker that
 * dies leaves them in the instance's totals: its counters stay in /metrics
 * (Departed), its counts on the stats page (addDeparted). Counts made after the last
 * read die with it. The reads every COUNTS_READ_MS carry the worker's mark of the
 * last one: a worker that counted nothing since answers with nothing (at rest, with
 * thousands of upstreams, a whole read costs a worker ~12 ms and the control plane
 * more).
 */
import type { StatsSnapshot } from '../admin/page/stats.js';
import { Departed, isMonotonic, type Exposition, type ParsedFamily } from './metrics-merge.js';
import { addDeparted } from './stats-merge.js';

/** How often the control plane reads every worker's counts when nobody asks: what a worker killed outright loses at most. */
export const COUNTS_READ_MS = 5_000;

/** A read's answer, and the order its question was sent in (answers may come back out of it). */
interface Read<T> {
  readonly asked: number;
  readonly value: T;
}

export class LastCounts<Handle> {
  readonly #metrics = new Map<Handle, Map<string, Read<ParsedFamily>>>();
  readonly #stats = new Map<Handle, Read<StatsSnapshot>>();
  /** What each worker had counted at its last whole counts read. */
  readonly #marks = new Map<Handle, string>();
  /** Dead workers' counters, added to every scrape's sums. */
  readonly departedMetrics = new Departed();
  #departedStats: StatsSnapshot | null = null;
  /** The counters and histograms the workers have: all a read for Departed needs to ask for. */
  readonly #monotonic = new Set<string>();
  #asked = 0;

  /** Number a question before it is sent: its answer is kept only if no later one's was. */
  asking(): number {
    return ++this.#asked;
  }

  /** Names of the families a read for the departed asks for (null: all, none seen yet). */
  get kept(): readonly string[] | null {
    return this.#monotonic.size === 0 ? null : [...this.#monotonic];
  }

  /** A scrape answered: its families (those asked for) replace the worker's earlier ones. */
  sawMetrics(handle: Handle, asked: number, exposition: Exposition): void {
    let last = this.#metrics.get(handle);
    if (last === undefined) this.#metrics.set(handle, (last = new Map()));
    for (const [name, family] of exposition) {
      if (isMonotonic(family)) this.#monotonic.add(name);
      if ((last.get(name)?.asked ?? 0) < asked) last.set(name, { asked, value: family });
    }
  }

  /** The mark of the worker's last whole counts read, for the next read to send (null: none yet). */
  markOf(handle: Handle): string | null {
    return this.#marks.get(handle) ?? null;
  }

  /** A counts read answered: what was read (null: nothing counted since the mark sent), and the worker's mark. */
  sawCounts(handle: Handle, asked: number, mark: string, exposition: Exposition | null, snapshot: StatsSnapshot | null): void {
    if (exposition !== null) this.sawMetrics(handle, asked, exposition);
    if (snapshot !== null) this.sawStats(handle, asked, snapshot);
    this.#marks.set(handle, mark);
  }

  /** The stats page's question answered. */
  sawStats(handle: Handle, asked: number, snapshot: StatsSnapshot): void {
    if ((this.#stats.get(handle)?.asked ?? 0) < asked) this.#stats.set(handle, { asked, value: snapshot });
  }

  /** Dead workers' counts as one snapshot (open connections left out), or null. */
  get departedStats(): StatsSnapshot | null {
    return this.#departedStats;
  }

  /** The worker is gone: what was last read of it joins the departed. */
  gone(handle: Handle): void {
    const metrics = this.#metrics.get(handle);
    if (metrics !== undefined) this.departedMetrics.add(new Map([...metrics].map(([name, read]) => [name, read.value])));
    this.#metrics.delete(handle);
    const stats = this.#stats.get(handle);
    if (stats !== undefined) this.#departedStats = addDeparted(this.#departedStats, stats.value);
    this.#stats.delete(handle);
    this.#marks.delete(handle);
  }
}
