/**
 * Bounded loads (TETHER_BALANCE_FACTOR) and p2c over the instance's connections, not
 * one worker's: each worker reports its open connections per upstream when they
 * changed, at most every LOAD_REPORT_MS; the control plane sends each worker what the
 * others hold, at most as often. A worker's view of the others is thus at most about
 * two periods (plus two IPC messages) old.
 */
import type { ListenerRuntime } from '../app/listener-runtime.js';
import type { Loads } from './messages.js';
import type { WorkerHandle, WorkerSet } from './worker-set.js';

export const LOAD_REPORT_MS = 250;

/** A worker's open connections by listener and upstream (non-zero ones). */
export function ownLoads(runtimes: readonly ListenerRuntime[]): Loads {
  const out: Record<string, Record<string, number>> = {};
  for (const runtime of runtimes) {
    const byUpstream: Record<string, number> = {};
    for (const u of runtime.pool.list()) if (u.active > 0) byUpstream[u.name] = u.active;
    out[runtime.name] = byUpstream;
  }
  return out;
}

/** A worker takes what the others hold: every upstream of every listener, 0 where none is reported. */
export function applyElsewhere(runtimes: readonly ListenerRuntime[], elsewhere: Loads): void {
  for (const runtime of runtimes) {
    const byUpstream = elsewhere[runtime.name] ?? {};
    for (const u of runtime.pool.list()) runtime.pool.setElsewhere(u.name, byUpstream[u.name] ?? 0);
  }
}

/** The control plane's side: the workers' reports, and what each is told of the others. */
export class LoadBoard {
  readonly #workers: WorkerSet;
  /** The instance's totals, for the control plane's own pools (GET /upstreams, GET /route). */
  readonly #onTotals: (totals: Loads) => void;
  readonly #reports = new Map<WorkerHandle, Loads>();
  #timer: NodeJS.Timeout | null = null;

  constructor(workers: WorkerSet, onTotals: (totals: Loads) => void) {
    this.#workers = workers;
    this.#onTotals = onTotals;
  }

  report(from: WorkerHandle, loads: Loads): void {
    this.#reports.set(from, loads);
    this.#soon();
  }

  gone(handle: WorkerHandle): void {
    if (this.#reports.delete(handle)) this.#soon();
  }

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #soon(): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => this.#send(), LOAD_REPORT_MS);
    this.#timer.unref();
  }

  #send(): void {
    this.#timer = null;
    const totals: Record<string, Record<string, number>> = {};
    for (const loads of this.#reports.values()) {
      for (const [listener, byUpstream] of Object.entries(loads)) {
        const sum = (totals[listener] ??= {});
        for (const [upstream, n] of Object.entries(byUpstream)) sum[upstream] = (sum[upstream] ?? 0) + n;
      }
    }
    this.#onTotals(totals);
    for (const handle of this.#workers.handles()) {
      const own = this.#reports.get(handle) ?? {};
      const elsewhere: Record<string, Record<string, number>> = {};
      for (const [listener, sum] of Object.entries(totals)) {
        const others: Record<string, number> = {};
        for (const [upstream, n] of Object.entries(sum)) {
          const rest = n - (own[listener]?.[upstream] ?? 0);
          if (rest > 0) others[upstream] = rest;
        }
        elsewhere[listener] = others;
      }
      this.#workers.send(handle, { type: 'elsewhere', loads: elsewhere });
    }
  }
}
