/**
 * A worker process of TETHER_WORKERS > 1: a Tether whose listeners accept on the
 * socket shared through cluster, whose membership and health come from the control
 * plane (applied whole, acknowledged once its table is built), and which answers the
 * control plane's questions (metrics, status) and orders (reload, stop).
 */
import type { Logger } from 'pino';
import { Tether } from '../app/tether.js';
import type { ListenerRuntime } from '../app/listener-runtime.js';
import type { Config } from '../config/types.js';
import { loadConfigWithWarnings } from '../config/load.js';
import { errorMessage } from '../errors.js';
import { SETTLE_WAIT_MS } from './broadcaster.js';
import { evidenceSender } from './evidence.js';
import { WorkerLeases } from './connection-lease.js';
import { IpcPinStore } from './pin-client.js';
import { applyElsewhere, LOAD_REPORT_MS, ownLoads } from './loads.js';
import { applySnapshot } from './membership-snapshot.js';
import { isMessage, isPinRequest, type Answers, type MembershipMessage, type PinNews, type PinRequest, type Questions, type ToControlPlane, type ToWorker, type Topic } from './messages.js';
import { TurnBatch } from './turn-batch.js';

export class WorkerProcess {
  readonly #logger: Logger;
  #config: Config;
  #tether: Tether | null = null;
  #started = false;
  /** The newest membership heard per listener: a runtime made later (start, reload) takes it. */
  readonly #memberships = new Map<string, MembershipMessage>();
  #stopping: Promise<void> | null = null;
  /** With TETHER_STORE=memory, the pins the control plane holds (read through a cache). */
  readonly #pins: IpcPinStore | null;
  readonly #pinRequests = new TurnBatch<PinRequest>((items) => this.#write({ type: 'pins', items }));
  /** Its shares of each listener's TETHER_MAX_CONNECTIONS. */
  readonly #leases = new WorkerLeases((m) => this.#send(m));
  /** The load report due LOAD_REPORT_MS after the first change since the last one (loads.ts). */
  #loadReport: NodeJS.Timeout | null = null;
  #lastLoads = '{}';

  constructor(config: Config, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
    this.#pins = config.store.kind === 'memory' ? new IpcPinStore(config.stickyMax, (m) => this.#send(m)) : null;
  }

  /** Listen to the control plane, then say hello: it answers with every membership and 'start'. */
  run(): void {
    process.on('message', (message: unknown) => {
      if (isMessage<ToWorker>(message)) this.#onMessage(message);
    });
    // No 'disconnect' handler: when the control plane is gone (killed), Node's cluster
    // exits the worker itself (an unexpected disconnect), before one would run.
    // Signals are the control plane's to act on (a terminal's Ctrl-C reaches the whole group).
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
    this.#send({ type: 'hello' });
  }

  #onMessage(message: ToWorker): void {
    switch (message.type) {
      case 'membership':
        this.#memberships.set(message.listener, message);
        this.#apply(this.#tether?.runtime(message.listener), message);
        return;
      case 'elsewhere':
        if (this.#tether !== null) applyElsewhere(this.#tether.runtimes, message.loads);
        return;
      case 'pins':
        for (const item of message.items) this.#onPinNews(item);
        return;
      case 'lease':
        this.#leases.get(message.listener).granted(message.books, message.grant, message.answer);
        return;
      case 'lease-reclaim':
        this.#leases.get(message.listener).reclaim(message.books);
        return;
      case 'start':
        void this.#start();
        return;
      case 'reload':
        void this.#reload();
        return;
      case 'stop':
        void this.#stop(message.drainTimeoutMs);
        return;
      case 'ask':
        void this.#answer(message.id, message.topic, message.question);
        return;
    }
  }

  async #start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    try {
      this.#tether = await Tether.start(this.#config, {
        logger: this.#logger,
        role: {
          kind: 'worker',
          store: this.#pins,
          lease: (listener) => this.#leases.get(listener),
          evidence: (listener) => evidenceSender(listener, (m) => this.#send(m)),
          attach: (runtime) => {
            runtime.pool.watchLoads(this.#loadsChanged);
            this.#apply(runtime, this.#memberships.get(runtime.name));
          },
        },
      });
    } catch (err) {
      this.#logger.fatal({ err }, 'worker start-up failed');
      this.#send({ type: 'failed', error: errorMessage(err) });
      this.#logger.flush(() => process.exit(1));
      return;
    }
    this.#send({ type: 'ready', listeners: this.#tether.runtimes.map((r) => ({ name: r.name, address: r.listener.address })) });
  }

  /**
   * A connection opened or closed, a membership or a reload changed the listeners:
   * this worker's open connections per upstream go out LOAD_REPORT_MS later, if they
   * differ from the last report by then. A worker whose loads stay put sends nothing
   * and sets no timer.
   */
  readonly #loadsChanged = (): void => {
    if (this.#loadReport !== null) return;
    this.#loadReport = setTimeout(this.#reportLoads, LOAD_REPORT_MS);
    this.#loadReport.unref();
  };

  readonly #reportLoads = (): void => {
    this.#loadReport = null;
    if (this.#tether === null || this.#stopping !== null) return;
    const loads = ownLoads(this.#tether.runtimes);
    const text = JSON.stringify(loads);
    if (text === this.#lastLoads) return;
    this.#lastLoads = text;
    this.#send({ type: 'loads', loads });
  };

  /** Apply a membership to its runtime (if there is one yet); acknowledge once routed by. */
  #apply(runtime: ListenerRuntime | undefined, message: MembershipMessage | undefined): void {
    if (runtime === undefined || message === undefined) return;
    applySnapshot(runtime.pool, message.upstreams);
    this.#loadsChanged();
    void runtime.pool.settled(SETTLE_WAIT_MS).then(() => this.#send({ type: 'applied', listener: message.listener, version: message.version }));
  }

  async #reload(): Promise<void> {
    let config: Config;
    try {
      config = loadConfigWithWarnings(process.env).config;
    } catch (err) {
      // The control plane took this file a moment ago: it changed again since.
      this.#logger.error({ error: errorMessage(err) }, 'worker reload rejected; keeping the running configuration');
      return;
    }
    this.#config = config;
    await this.#tether?.reload(this.#config).catch((err: unknown) => this.#logger.error({ err }, 'worker reload failed'));
    this.#loadsChanged();
  }

  async #answer<T extends Topic>(id: number, topic: T, question: Questions[T]): Promise<void> {
    const tether = this.#tether;
    if (tether === null) return;
    let answer: Answers[Topic];
    if (topic === 'metrics') {
      const names = (question as Questions['metrics']).names;
      answer = { text: await tether.metrics.scrape(names ?? undefined) };
    } else if (topic === 'stats') {
      answer = { snapshot: tether.ownStats() };
    } else if (topic === 'counts') {
      const { names, since } = question as Questions['counts'];
      // Taken first: whatever is counted while the answer is made shows at the next read.
      const mark = countsMark(tether);
      const open = tether.runtimes.some((r) => r.listener.active > 0);
      answer =
        since === mark && !open
          ? { mark, text: null, snapshot: null }
          : { mark, text: await tether.metrics.scrape(names ?? undefined), snapshot: tether.ownStats() };
    } else if (topic === 'rebalance') {
      const { listener, perSecond } = question as Questions['rebalance'];
      answer = { moving: tether.runtime(listener)?.rebalance(perSecond).moving ?? 0 };
    } else {
      const listeners = tether.runtimes.map((r) => r.listener);
      answer = { active: listeners.reduce((n, l) => n + l.active, 0), total: listeners.reduce((n, l) => n + l.accepted, 0) };
    }
    this.#send({ type: 'answer', id, topic, answer } as ToControlPlane);
  }

  /** Drain (or close, with null) and exit 0. A close order during a drain cuts it short. */
  #stop(drainTimeoutMs: number | null): Promise<void> {
    const tether = this.#tether;
    if (this.#stopping !== null) {
      if (drainTimeoutMs === null) void tether?.close();
      return this.#stopping;
    }
    const stopped = tether === null ? Promise.resolve() : drainTimeoutMs === null ? tether.close() : tether.shutdown(drainTimeoutMs, 0);
    this.#stopping = stopped.then(
      () => {
        this.#pinRequests.flush(); // the last touches, queued by the store's close
        this.#logger.flush(() => process.exit(0));
      },
      (err: unknown) => {
        this.#logger.error({ err }, 'worker shutdown failed');
        this.#logger.flush(() => process.exit(1));
      },
    );
    return this.#stopping;
  }

  #onPinNews(message: PinNews): void {
    if (message.type === 'pin') this.#pins?.heard(message.listener, message.key, message.upstream, message.ttlS);
    else this.#pins?.answered(message.id, message.answer);
  }

  /** Pin requests leave once per turn, together; anything else at once, after them. */
  #send(message: ToControlPlane): boolean {
    if (!process.connected) return false;
    if (isPinRequest(message)) {
      this.#pinRequests.add(message);
      return true;
    }
    this.#pinRequests.flush();
    return this.#write(message);
  }

  #write(message: ToControlPlane): boolean {
    if (!process.connected || process.send === undefined) return false;
    process.send(message, undefined, undefined, () => undefined);
    return true;
  }
}

/**
 * What this worker has counted so far, as the control plane's counts read compares it:
 * every count its metrics made, and every connection each listener accepted.
 */
function countsMark(tether: Tether): string {
  return `${tether.metrics.changes}/${tether.runtimes.map((r) => r.listener.accepted).join(',')}`;
}
