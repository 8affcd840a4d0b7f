/**
 * The first process of TETHER_WORKERS > 1: a Tether whose listeners route but do not
 * accept (configuration and reload, admin API, health checks, membership, the store,
 * metrics), and the N workers that accept and relay, fed by it over IPC.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import type { StatsSnapshot } from '../admin/page/stats.js';
import { ExpositionWriter } from '../admin/prom-text.js';
import type { Scrape } from '../admin/server.js';
import type { WorkerView } from '../admin/types.js';
import type { ListenerRuntime } from '../app/listener-runtime.js';
import type { RelayPlane } from '../app/roles.js';
import { Tether } from '../app/tether.js';
import type { Config } from '../config/types.js';
import type { RebalanceStart } from '../routing/rebalance.js';
import { MembershipBroadcaster } from './broadcaster.js';
import { workerCount } from './count.js';
import { applyElsewhere, LoadBoard } from './loads.js';
import { COUNTS_READ_MS, LastCounts } from './last-counts.js';
import { LeaseLedger } from './lease-ledger.js';
import { mergeFamilies, parseExposition, type WorkerExposition } from './metrics-merge.js';
import type { Answers, Questions, Topic } from './messages.js';
import { PinService } from './pin-service.js';
import { mergeStats } from './stats-merge.js';
import { WorkerSet, type WorkerHandle } from './worker-set.js';

/** The longest a scrape or GET /workers waits for a worker's answer (it is then left out). */
const ASK_TIMEOUT_MS = 2_000;

/** A question put to every answering worker: its number (LastCounts), and each answer beside its worker (null: none in time). */
interface AskedAll<T extends Topic> {
  readonly asked: number;
  readonly answers: readonly (readonly [WorkerHandle, Answers[T] | null])[];
}

export class ControlPlane implements RelayPlane {
  readonly #logger: Logger;
  readonly #workers: WorkerSet;
  readonly #broadcaster: MembershipBroadcaster;
  readonly #pins: PinService;
  readonly #loads: LoadBoard;
  readonly #leases: LeaseLedger<WorkerHandle>;
  #tether: Tether | null = null;
  /** Each worker's counts as last read: what it leaves to the totals when it dies. */
  readonly #lastCounts = new LastCounts<WorkerHandle>();
  #countsTimer: NodeJS.Timeout | null = null;
  #readingCounts = false;
  #accepting = false;
  /** Where each listener accepts, as the first worker ready said. */
  readonly #addresses = new Map<string, string>();

  constructor(count: number, logger: Logger) {
    this.#logger = logger;
    this.#workers = new WorkerSet(count, logger.child({ component: 'workers' }), {
      hello: (handle) => this.#broadcaster.greet(handle),
      applied: () => this.#broadcaster.recheck(),
      ready: (_handle, listeners) => {
        for (const { name, address } of listeners) if (!this.#addresses.has(name)) this.#addresses.set(name, address);
      },
      evidence: (listener, upstream, ok, reason) => {
        const monitor = this.#tether?.runtime(listener)?.monitor;
        if (ok) monitor?.reportSuccess(upstream);
        else monitor?.reportFailure(upstream, reason);
      },
      pin: (handle, request) => void this.#pins.handle(handle, request),
      loads: (handle, loads) => this.#loads.report(handle, loads),
      starting: (handle) => this.#leases.started(handle),
      leaseAsk: (handle, listener, books, wanted) => this.#leases.ask(handle, listener, books, wanted),
      leaseReturn: (handle, listener, books, count) => this.#leases.returned(handle, listener, books, count),
      gone: (handle) => {
        this.#loads.gone(handle);
        this.#leases.gone(handle);
        this.#lastCounts.gone(handle);
        this.#broadcaster.recheck();
      },
    });
    this.#broadcaster = new MembershipBroadcaster(this.#workers, () => this.#tether?.runtimes ?? []);
    // The control plane relays nothing: every connection its pools count is elsewhere.
    this.#loads = new LoadBoard(this.#workers, (totals) => applyElsewhere(this.#tether?.runtimes ?? [], totals));
    this.#leases = new LeaseLedger<WorkerHandle>(count, (handle, message) => this.#workers.send(handle, message));
    // Workers send pin requests only with the memory store (with Redis they use it themselves).
    this.#pins = new PinService(this.#workers, () => this.#tether?.store ?? null);
  }

  /** Start the control plane's Tether, then its workers; resolves once every worker accepts. */
  static async start(config: Config, logger: Logger): Promise<Tether> {
    const count = workerCount(config);
    const plane = new ControlPlane(count, logger);
    const tether = await Tether.start(config, { logger, role: { kind: 'control-plane', plane } });
    plane.#tether = tether;
    plane.#lendLimits();
    try {
      await plane.#workers.start();
      plane.#accepting = true;
      plane.#countsTimer = setInterval(() => void plane.#readCounts(), COUNTS_READ_MS).unref();
    } catch (err) {
      await tether.close();
      throw err;
    }
    for (const runtime of tether.runtimes) {
      const { name, config: listener } = runtime;
      logger.info(
        { listener: name, address: plane.#addresses.get(name), mode: listener.mode, hash: listener.hash, upstreams: runtime.pool.list().length, workers: count },
        'listening',
      );
    }
    return tether;
  }

  get accepting(): boolean {
    return this.#accepting;
  }

  attach(runtime: ListenerRuntime): void {
    this.#broadcaster.watch(runtime);
  }

  pinEvicted(listener: string, key: string): void {
    this.#workers.broadcast({ type: 'pin', listener, key, upstream: null, ttlS: 0 });
  }

  settled(listener: string): Promise<void> {
    return this.#broadcaster.settled(listener);
  }

  reloaded(): void {
    // In order on each channel: the worker reads the file, then gets every membership.
    this.#workers.broadcast({ type: 'reload' });
    this.#broadcaster.sendAll();
    this.#lendLimits();
  }

  /** Each listener's TETHER_MAX_CONNECTIONS, lent out to the workers (lease-ledger.ts). */
  #lendLimits(): void {
    this.#leases.configure(new Map((this.#tether?.runtimes ?? []).map((r) => [r.name, r.config.maxConnections])));
  }

  scrape(own: Metrics, names: readonly string[] | undefined): Scrape {
    return {
      contentType: own.contentType,
      write: async (emit) => {
        const workers = await this.#workerExpositions(names);
        const families = mergeFamilies(parseExposition(await own.scrape(names)), workers, this.#lastCounts.departedMetrics);
        const out = new ExpositionWriter(emit);
        for (const family of families) {
          out.text(family);
          if (out.overdue()) await out.pause();
        }
        out.end();
      },
    };
  }

  /** The workers by slot, then the standby (id 0) if there is one. */
  async workers(): Promise<readonly WorkerView[]> {
    const handles = this.#workers.handles().sort((a, b) => a.slot - b.slot);
    const standby = this.#workers.standby;
    if (standby !== null) handles.push(standby);
    const answers = await Promise.all(handles.map((h) => (h.state === 'running' ? this.#workers.ask(h, 'status', {}, ASK_TIMEOUT_MS) : null)));
    return handles.map((h, i) => {
      const answer = answers[i] ?? null;
      return {
        id: h.slot,
        pid: h.worker.process.pid ?? 0,
        state: answer === null && h.state === 'running' ? 'unresponsive' : h.state,
        active: answer?.active ?? 0,
        total: answer?.total ?? 0,
      };
    });
  }

  async stats(own: StatsSnapshot): Promise<StatsSnapshot> {
    const snapshots = await this.#workerStats();
    const departed = this.#lastCounts.departedStats;
    if (departed !== null) snapshots.push(departed);
    return mergeStats(own, snapshots);
  }

  async rebalance(listener: string, perSecond: number): Promise<RebalanceStart> {
    const handles = this.#workers.handles().filter((h) => h.state === 'running');
    const share = { listener, perSecond: perSecond / Math.max(1, handles.length) };
    const answers = await Promise.all(handles.map((h) => this.#workers.ask(h, 'rebalance', share, ASK_TIMEOUT_MS)));
    return { listener, moving: answers.reduce((n, a) => n + (a?.moving ?? 0), 0), perSecond };
  }

  stop(drainTimeoutMs: number | null): Promise<void> {
    if (this.#countsTimer !== null) clearInterval(this.#countsTimer);
    this.#loads.close();
    this.#leases.close();
    return this.#workers.stop(drainTimeoutMs);
  }

  /** Every answering worker's families (those named, or all); each kept as its last read. */
  async #workerExpositions(names: readonly string[] | undefined): Promise<WorkerExposition[]> {
    const { asked, answers } = await this.#askAnswering('metrics', () => ({ names: names ?? null }));
    const out: WorkerExposition[] = [];
    for (const [handle, answer] of answers) {
      if (answer === null) {
        this.#logger.warn({ worker: handle.slot }, 'worker did not answer the scrape in time: its series are left out');
        continue;
      }
      const exposition = parseExposition(answer.text);
      this.#lastCounts.sawMetrics(handle, asked, exposition);
      out.push({ id: handle.slot, exposition });
    }
    return out;
  }

  /** Every answering worker's stats page counts; each kept as its last read. */
  async #workerStats(): Promise<StatsSnapshot[]> {
    const { asked, answers } = await this.#askAnswering('stats', () => ({}));
    const snapshots: StatsSnapshot[] = [];
    for (const [handle, answer] of answers) {
      if (answer === null) continue;
      this.#lastCounts.sawStats(handle, asked, answer.snapshot);
      snapshots.push(answer.snapshot);
    }
    return snapshots;
  }

  /** Ask every worker that answers questions (running or stopping). */
  async #askAnswering<T extends Topic>(topic: T, question: (handle: WorkerHandle) => Questions[T]): Promise<AskedAll<T>> {
    const handles = this.#workers.handles().filter((h) => h.state === 'running' || h.state === 'stopping');
    const asked = this.#lastCounts.asking();
    const answers = await Promise.all(handles.map((h) => this.#workers.ask(h, topic, question(h), ASK_TIMEOUT_MS)));
    return { asked, answers: handles.map((h, i) => [h, answers[i] ?? null]) };
  }

  /**
   * Read every worker's counts when nobody has asked, so one killed outright (kill -9,
   * the OOM killer) loses at most COUNTS_READ_MS of them: its counters and histograms
   * only, and its stats page counts. A worker that counted nothing since its last
   * whole read answers with nothing (last-counts.ts).
   */
  async #readCounts(): Promise<void> {
    if (this.#readingCounts) return;
    this.#readingCounts = true;
    try {
      const last = this.#lastCounts;
      const names = last.kept;
      const { asked, answers } = await this.#askAnswering('counts', (h) => ({ names, since: last.markOf(h) }));
      let unchanged = 0;
      for (const [handle, answer] of answers) {
        if (answer === null) continue;
        if (answer.text === null) unchanged++;
        last.sawCounts(handle, asked, answer.mark, answer.text === null ? null : parseExposition(answer.text), answer.snapshot);
      }
      this.#logger.debug({ workers: answers.length, unchanged }, 'counts read');
    } finally {
      this.#readingCounts = false;
    }
  }
}
