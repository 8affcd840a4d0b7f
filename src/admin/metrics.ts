/**
 * Prometheus metrics for one balancer (names and labels are fixed by the contract's
 * "Metrics" section).
 *
 * Each Metrics owns its own prom-client Registry, never the global one, so several
 * balancers in one process (tests, embedders) do not clash.
 *
 * Cost per connection: the listener hooks bump plain numbers in records cached per
 * listener and per upstream name; nothing else sees them until a scrape. That is
 * cheaper than prom-client's own label children: in prom-client 15
 * `counter.labels(...).inc()` still validates and hashes the label set on every call
 * (lib/counter.js), whereas here a connection costs one Map lookup and a few
 * additions. Counters stay monotonic: a scrape writes each series with the running
 * total, which only grows.
 *
 * Cost per scrape: the four per-upstream families (one series per upstream, or per
 * upstream and outcome or direction) are written by prom-text.ts straight from those
 * records and from the pools' Upstream objects, a slice of the event loop at a time;
 * prom-client's collect() would hash every label set and render each family in one
 * synchronous stretch (5,000 upstreams with traffic: 9-25 ms per family). The other
 * families (process metrics, histograms, per-listener counters) stay on the prom-client
 * registry.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RoutedRecord } from '../proxy/context.js';
import { bytesByUpstream, type ByteCount } from './live-bytes.js';
import { loopDelayReader, RESOLUTION_MS as LOOP_RESOLUTION_MS, type LoopDelayReader } from './loop-delay.js';
import { registerNodeMetrics } from './node-metrics.js';
import { ExpositionWriter, type WriterOptions } from './prom-text.js';
import { VIAS, type ListenerTotals, type MeteredListener } from './types.js';
import { ACTIVE, BYTES, CONNECTIONS, ListenerRecord, UP, writeActive, writeBytes, writeConnections, writeUp } from './upstream-families.js';

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

/** One family of a scrape, written into `out` (pausing as it says). */
type WriteFamily = (out: ExpositionWriter) => Promise<void>;

export class Metrics {
  readonly #registry = new Registry();
  /** Every family in scrape order: Node's default metrics, then tether's, as registered. */
  readonly #families = new Map<string, WriteFamily>();
  readonly #records = new Map<string, ListenerRecord>();
  /** Listeners running now. */
  readonly #live = new Set<MeteredListener>();
  /** Listeners removed on reload whose connections go on: counted in connections_active until they end. */
  readonly #retired = new Set<MeteredListener>();
  readonly #ringBuild: Histogram;
  /** Builds by kind (tether_ring_builds_total): derived from the previous ring, or whole. */
  readonly #builds = { incremental: 0, full: 0 };
  readonly #storeErrors: Counter;
  readonly #pinsEvicted: Counter;
  readonly #loop: LoopDelayReader;
  readonly #nodeLoop: LoopDelayReader;
  #loopP99 = 0;
  /** Bumped at every count: unchanged, nothing counted has (the counters, and the stats page's counts). */
  #changes = 0;

  readonly #writerOptions: WriterOptions;

  /** `writer`: how a scrape is sliced (tests make slices of a line or two; see prom-text.ts). */
  constructor(writer: WriterOptions = {}) {
    this.#writerOptions = writer;
    const registers = [this.#registry];
    this.#nodeLoop = registerNodeMetrics(this.#registry);
    for (const metric of this.#registry.getMetricsAsArray()) this.#fromRegistry(metric.name);

    this.#families.set(ACTIVE.name, (out) => writeActive(out, this.#live, this.#retired));
    this.#families.set(CONNECTIONS.name, (out) => writeConnections(out, this.#records));
    this.#families.set(BYTES.name, (out) => writeBytes(out, this.#records, (listener) => this.bytes(listener)));
    this.#families.set(UP.name, (out) => writeUp(out, this.#live));
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
    this.#pinsEvicted = new Counter({
      name: 'tether_pins_evicted_total',
      help: 'Learned pins the memory store evicted, least recently used first, to stay within TETHER_STICKY_MAX.',
      registers,
    });

    // p99 of the event-loop delay since the previous scrape: the histogram is reset
    // after every read, as prom-client's own nodejs_eventloop_lag_* gauges do. Two
    // Prometheus servers scraping one balancer therefore each see the delay since
    // the other's last scrape.
    // The sampler runs while the loop has work (loop-delay.ts).
    this.#loop = loopDelayReader();
    new Gauge({
      name: 'tether_event_loop_delay_seconds',
      help: `p99 event-loop delay since the previous scrape (sampled every ${LOOP_RESOLUTION_MS} ms).`,
      registers,
      collect: collector((gauge: Gauge) => {
        // A scrape right after another may find no sample yet: keep the last value.
        const samples = this.#loop.take();
        if (samples.count > 0) {
          // The histogram records the time between its timer's callbacks, the period
          // included (an idle loop reads ~10.05 ms at a 10 ms resolution): the delay
          // is what lies beyond the period.
          this.#loopP99 = Math.max(0, samples.percentile(99) / 1e6 - LOOP_RESOLUTION_MS) / 1000;
          samples.reset();
        }
        gauge.set(this.#loopP99);
      }),
    });
    // Then the prom-client families registered since, in their order.
    for (const metric of this.#registry.getMetricsAsArray()) {
      if (!this.#families.has(metric.name)) this.#fromRegistry(metric.name);
    }
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /**
   * Writes the Prometheus text exposition of every metric family, or of those named,
   * in scrape order: `emit` receives it a piece at a time, and the pieces joined are
   * the text. Between pieces the event loop runs: with thousands of upstreams a whole
   * scrape is milliseconds of work (5,000 upstreams: ~10 ms on a 2-core Xeon; through
   * prom-client it was 30-70), which would otherwise hold up relayed bytes in one go.
   * A piece is at most SLICE_LINES lines or about SLICE_MS of work (prom-text.ts),
   * plus one prom-client family (small ones) at a slice's end.
   * Names that are not families here are skipped (see has()); a name given twice is
   * written once.
   */
  async write(emit: (text: string) => void, names?: readonly string[]): Promise<void> {
    const wanted = names === undefined ? [...this.#families.keys()] : [...new Set(names)].filter((name) => this.has(name));
    const out = new ExpositionWriter(emit, this.#writerOptions);
    await out.pause(); // see pause(): the caller may be an I/O callback
    for (const name of wanted) {
      await this.#families.get(name)!(out);
      if (out.overdue()) await out.pause();
    }
    out.end();
  }

  /** The whole text of write() as one string (tests, embedders). */
  async scrape(names?: readonly string[]): Promise<string> {
    const pieces: string[] = [];
    await this.write((text) => pieces.push(text), names);
    return pieces.join('');
  }

  /** Whether `name` is a metric family of this balancer (GET /metrics?name=). */
  has(name: string): boolean {
    return this.#families.has(name);
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
        this.#changes++;
      },
      onSessionEnd: (session) => {
        this.#changes++;
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

  /**
   * How many times anything was counted so far: sessions started and ended, table
   * builds, store errors, evictions. Equal twice with no connection open between, and
   * no counter nor the stats page's counts moved (bytes move only with a connection open).
   */
  get changes(): number {
    return this.#changes;
  }

  /** Ended-unit totals of a listener (the stats page reads these). */
  totals(listener: string): ListenerTotals {
    return this.#record(listener);
  }

  /** A listener's bytes by upstream so far: ended units and open ones (live-bytes.ts). */
  bytes(listener: string): Map<string, ByteCount> {
    const open: Iterable<RoutedRecord>[] = [];
    for (const metered of [...this.#live, ...this.#retired]) if (metered.name === listener) open.push(metered.openUnits());
    return bytesByUpstream(this.#record(listener), open);
  }

  /**
   * One lookup-table build took `seconds`, timed where it ran (a worker thread, or
   * inline); `incremental` when it was derived from the previous ring.
   */
  observeRingBuild(seconds: number, incremental = false): void {
    this.#ringBuild.observe(seconds);
    this.#changes++;
    if (incremental) this.#builds.incremental++;
    else this.#builds.full++;
  }

  /** An affinity store call failed or timed out (for the Redis store). */
  storeError(): void {
    this.#changes++;
    this.#storeErrors.inc();
  }

  /** The memory store evicted a pin (TETHER_STICKY_MAX). */
  pinEvicted(): void {
    this.#changes++;
    this.#pinsEvicted.inc();
  }

  /**
   * Whether `listener` can route by learned pins (http learn rules, TETHER_STICK):
   * where nothing learns, `route_decisions_total{via="learned"}` is not written.
   */
  setLearns(listener: string, learns: boolean): void {
    this.#record(listener).learns = learns;
  }

  /** Stop reading the event-loop sampler (the last reader stops it). */
  close(): void {
    this.#loop.close();
    this.#nodeLoop.close();
  }

  /** A family prom-client renders (small ones: a handful of series each). */
  #fromRegistry(name: string): void {
    this.#families.set(name, async (out) => out.text(await this.#registry.getSingleMetricAsString(name)));
  }

  #record(listener: string): ListenerRecord {
    let record = this.#records.get(listener);
    if (record === undefined) {
      record = new ListenerRecord(listener);
      this.#records.set(listener, record);
    }
    return record;
  }

  #collectDecisions(counter: Counter): void {
    counter.reset();
    for (const record of this.#records.values()) {
      for (const via of VIAS) {
        // A series once written stays (a reload that turns learning off keeps it).
        if (via === 'learned' && !record.learns && record.decisions.learned === 0) continue;
        counter.inc({ listener: record.listener, via }, record.decisions[via]);
      }
    }
  }
}

/** prom-client calls `collect` with the metric as `this`; pass it as an argument instead. */
function collector<M>(fn: (metric: M) => void): (this: M) => void {
  return function (this: M) {
    fn(this);
  };
}
