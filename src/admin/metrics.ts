/**
 * Prometheus metrics for one balancer (names and labels are fixed by the contract's
 * "Metrics" section).
 *
 * Each Metrics owns its own prom-client Registry, never the global one, so several
 * balancers in one process (tests, embedders) do not clash.
 *
 * Cost per connection: the listener hooks bump plain numbers in records cached per
 * listener and per upstream name; prom-client sees them only at scrape time, through
 * each metric's `collect`. That is cheaper than prom-client's own label children:
 * in prom-client 15 `counter.labels(...).inc()` still validates and hashes the label
 * set on every call (lib/counter.js), whereas here a connection costs one Map lookup
 * and a few additions. Counters stay monotonic: a scrape rewrites each series with
 * the running total, which only grows.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RoutedRecord } from '../listener/context.js';
import type { Outcome } from '../listener/session.js';
import type { RouteVia, UpstreamPool } from '../pool/pool.js';
import type { Upstream } from '../pool/upstream.js';

export const OUTCOMES: readonly Outcome[] = ['ok', 'refused', 'no_upstream', 'connect_failed', 'bad_request', 'timeout'];
export const VIAS: readonly RouteVia[] = ['learned', 'hash', 'p2c'];

/** What the metrics read from one listener at scrape time. */
export interface MeteredListener {
  readonly name: string;
  readonly pool: UpstreamPool;
  /**
   * The pool's upstreams plus removed ones that still hold open connections
   * (a removed upstream lives on while its connections do).
   */
  upstreams(): Iterable<Upstream>;
}

/** Closed-connection totals of one (listener, upstream) pair; upstream "" = none. */
export interface UpstreamTotals {
  readonly upstream: string;
  readonly outcomes: Record<Outcome, number>;
  fromClient: number;
  toClient: number;
}

/** Running totals of one listener, kept across reloads under its name. */
export interface ListenerTotals {
  readonly listener: string;
  readonly decisions: Record<RouteVia, number>;
  /** By upstream name; "" holds connections that never reached an upstream. */
  readonly upstreams: ReadonlyMap<string, UpstreamTotals>;
}

/** The hooks a listener takes (onSessionStart / onSessionEnd in its options). */
export interface SessionHooks {
  readonly onSessionStart: (routed: RoutedRecord) => void;
  readonly onSessionEnd: (routed: RoutedRecord) => void;
}

/**
 * Ring builds run from 50 us (a handful of upstreams) to seconds (millions of
 * points near MAX_RING_POINTS), so the buckets span 0.1 ms to 5 s.
 */
const RING_BUILD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Event-loop delay sampling period (ms): fine enough to see stalls, cheap enough to leave on. */
const LOOP_RESOLUTION_MS = 10;

class ListenerRecord implements ListenerTotals {
  readonly listener: string;
  readonly decisions: Record<RouteVia, number> = { learned: 0, hash: 0, p2c: 0 };
  readonly upstreams = new Map<string, UpstreamRecord>();
  readonly none: UpstreamRecord;

  constructor(listener: string) {
    this.listener = listener;
    this.none = this.upstream('');
  }

  upstream(name: string): UpstreamRecord {
    let record = this.upstreams.get(name);
    if (record === undefined) {
      record = new UpstreamRecord(name);
      this.upstreams.set(name, record);
    }
    return record;
  }
}

class UpstreamRecord implements UpstreamTotals {
  readonly upstream: string;
  readonly outcomes: Record<Outcome, number> = { ok: 0, refused: 0, no_upstream: 0, connect_failed: 0, bad_request: 0, timeout: 0 };
  fromClient = 0;
  toClient = 0;

  constructor(upstream: string) {
    this.upstream = upstream;
  }
}

export class Metrics {
  readonly registry = new Registry();
  readonly #records = new Map<string, ListenerRecord>();
  /** Listeners running now. */
  readonly #live = new Set<MeteredListener>();
  /** Listeners removed on reload whose connections go on: counted in connections_active until they end. */
  readonly #retired = new Set<MeteredListener>();
  readonly #ringBuild: Histogram;
  /** Builds by kind (tether_ring_builds_total): derived from the previous ring, or whole. */
  readonly #builds = { incremental: 0, full: 0 };
  readonly #storeErrors: Counter;
  readonly #loop: IntervalHistogram;
  #loopP99 = 0;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    new Gauge({
      name: 'tether_connections_active',
      help: 'Open client connections by upstream (removed upstreams included while their connections last).',
      labelNames: ['listener', 'upstream'],
      registers,
      collect: collector((gauge) => this.#collectActive(gauge)),
    });
    new Counter({
      name: 'tether_connections_total',
      help: 'Closed client connections by outcome; upstream="" when none was reached.',
      labelNames: ['listener', 'upstream', 'outcome'],
      registers,
      collect: collector((counter) => this.#collectConnections(counter)),
    });
    new Counter({
      name: 'tether_bytes_total',
      help: 'Bytes of closed client connections: from_client = sent by clients, to_client = received by clients.',
      labelNames: ['listener', 'upstream', 'direction'],
      registers,
      collect: collector((counter) => this.#collectBytes(counter)),
    });
    new Gauge({
      name: 'tether_upstream_up',
      help: '1 when the upstream is up (draining counts as up), 0 when down.',
      labelNames: ['listener', 'upstream'],
      registers,
      collect: collector((gauge) => this.#collectUp(gauge)),
    });
    new Counter({
      name: 'tether_route_decisions_total',
      help: 'Routing decisions by how the upstream was chosen.',
      labelNames: ['listener', 'via'],
      registers,
      collect: collector((counter) => this.#collectDecisions(counter)),
    });
    this.#ringBuild = new Histogram({
      name: 'tether_ring_build_seconds',
      help: 'Time to build a lookup table (ring, Maglev, ...) after a membership change.',
      buckets: RING_BUILD_BUCKETS,
      registers,
    });
    new Counter({
      name: 'tether_ring_builds_total',
      help: 'Lookup-table builds: kind="incremental" derived from the previous ring, kind="full" built whole.',
      labelNames: ['kind'],
      registers,
      collect: collector((counter: Counter) => {
        counter.reset();
        counter.inc({ kind: 'incremental' }, this.#builds.incremental);
        counter.inc({ kind: 'full' }, this.#builds.full);
      }),
    });
    this.#storeErrors = new Counter({
      name: 'tether_store_errors_total',
      help: 'Failed or timed-out calls to the affinity store.',
      registers,
    });

    // p99 of the event-loop delay since the previous scrape: the histogram is reset
    // after every read, as prom-client's own nodejs_eventloop_lag_* gauges do. Two
    // Prometheus servers scraping one balancer therefore each see the delay since
    // the other's last scrape.
    this.#loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.#loop.enable();
    new Gauge({
      name: 'tether_event_loop_delay_seconds',
      help: `p99 event-loop delay since the previous scrape (sampled every ${LOOP_RESOLUTION_MS} ms).`,
      registers,
      collect: collector((gauge: Gauge) => {
        // A scrape right after another may find no sample yet: keep the last value.
        if (this.#loop.count > 0) {
          // The histogram records the time between its timer's callbacks, the period
          // included (an idle loop reads ~10.05 ms at a 10 ms resolution): the delay
          // is what lies beyond the period.
          this.#loopP99 = Math.max(0, this.#loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS) / 1000;
          this.#loop.reset();
        }
        gauge.set(this.#loopP99);
      }),
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The Prometheus text exposition of every metric family, or of those named. Each
   * family is rendered in its own turn of the event loop: with thousands of
   * upstreams a whole scrape takes tens of milliseconds (5,000 upstreams: ~40 ms on
   * a 2-core Xeon), which prom-client's registry.metrics() spends in one go while
   * relayed bytes wait; yielding between families bounds the stall by the largest.
   * Names that are not families here are skipped (see has()).
   */
  async scrape(names?: readonly string[]): Promise<string> {
    const families = names?.filter((name) => this.has(name)) ?? this.registry.getMetricsAsArray().map((metric) => metric.name);
    const parts: string[] = [];
    for (const name of families) {
      parts.push(await this.registry.getSingleMetricAsString(name));
      await nextTurn();
    }
    return parts.length === 0 ? '' : `${parts.join('\n\n')}\n`;
  }

  /** Whether `name` is a metric family of this balancer (GET /metrics?name=). */
  has(name: string): boolean {
    return this.registry.getSingleMetric(name) !== undefined;
  }

  /**
   * Hooks for one listener's TcpListener. Made once per listener (not per
   * connection); the same name keeps its totals across reloads.
   */
  hooks(listener: string): SessionHooks {
    const record = this.#record(listener);
    return {
      onSessionStart: (session) => {
        record.decisions[session.via]++;
      },
      onSessionEnd: (session) => {
        const upstream = session.upstream;
        const totals = upstream === null ? record.none : record.upstream(upstream.name);
        totals.outcomes[session.outcome]++;
        totals.fromClient += session.fromClient;
        totals.toClient += session.toClient;
      },
    };
  }

  /** Read a listener's upstreams at scrape time (connections_active, upstream_up). */
  track(listener: MeteredListener): void {
    this.#retired.delete(listener);
    this.#live.add(listener);
  }

  /** A listener removed on reload: its open connections are still counted until they end. */
  retire(listener: MeteredListener): void {
    if (this.#live.delete(listener)) this.#retired.add(listener);
  }

  /** Closed-connection totals of a listener (the stats page reads these). */
  totals(listener: string): ListenerTotals {
    return this.#record(listener);
  }

  /**
   * One lookup-table build took `seconds`, timed where it ran (a worker thread, or
   * inline); `incremental` when it was derived from the previous ring.
   */
  observeRingBuild(seconds: number, incremental = false): void {
    this.#ringBuild.observe(seconds);
    if (incremental) this.#builds.incremental++;
    else this.#builds.full++;
  }

  /** An affinity store call failed or timed out (for the Redis store). */
  storeError(): void {
    this.#storeErrors.inc();
  }

  /** Stop the event-loop sampler. */
  close(): void {
    this.#loop.disable();
  }

  #record(listener: string): ListenerRecord {
    let record = this.#records.get(listener);
    if (record === undefined) {
      record = new ListenerRecord(listener);
      this.#records.set(listener, record);
    }
    return record;
  }

  #collectActive(gauge: Gauge): void {
    gauge.reset();
    const sum = (listener: MeteredListener, includeIdle: boolean): void => {
      // Summed by name: an upstream removed and added again is two objects, one series.
      const byName = new Map<string, number>();
      for (const u of listener.upstreams()) {
        if (includeIdle || u.active > 0) byName.set(u.name, (byName.get(u.name) ?? 0) + u.active);
      }
      for (const [upstream, active] of byName) gauge.set({ listener: listener.name, upstream }, active);
    };
    for (const listener of this.#retired) {
      let open = 0;
      for (const u of listener.upstreams()) open += u.active;
      if (open === 0) this.#retired.delete(listener);
      else sum(listener, false);
    }
    // Live listeners last: their values win over a retired one of the same name.
    for (const listener of this.#live) sum(listener, true);
  }

  #collectUp(gauge: Gauge): void {
    gauge.reset();
    for (const listener of this.#live) {
      for (const u of listener.pool.list()) gauge.set({ listener: listener.name, upstream: u.name }, u.healthy ? 1 : 0);
    }
  }

  #collectConnections(counter: Counter): void {
    counter.reset();
    for (const record of this.#records.values()) {
      for (const totals of record.upstreams.values()) {
        for (const outcome of OUTCOMES) {
          const value = totals.outcomes[outcome];
          if (value > 0) counter.inc({ listener: record.listener, upstream: totals.upstream, outcome }, value);
        }
      }
    }
  }

  #collectBytes(counter: Counter): void {
    counter.reset();
    for (const record of this.#records.values()) {
      for (const totals of record.upstreams.values()) {
        // The "" series only when something was counted there (bytes before a failed connect).
        if (totals.upstream === '' && totals.fromClient === 0 && totals.toClient === 0) continue;
        counter.inc({ listener: record.listener, upstream: totals.upstream, direction: 'from_client' }, totals.fromClient);
        counter.inc({ listener: record.listener, upstream: totals.upstream, direction: 'to_client' }, totals.toClient);
      }
    }
  }

  #collectDecisions(counter: Counter): void {
    counter.reset();
    for (const record of this.#records.values()) {
      for (const via of VIAS) counter.inc({ listener: record.listener, via }, record.decisions[via]);
    }
  }
}

/** prom-client calls `collect` with the metric as `this`; pass it as an argument instead. */
function collector<M>(fn: (metric: M) => void): (this: M) => void {
  return function (this: M) {
    fn(this);
  };
}
