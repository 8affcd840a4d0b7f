/**
 * The worker processes, on the control plane's side: forked with cluster on one shared
 * listening socket that the kernel hands connections from (SCHED_NONE: no hand-off
 * through this process), kept at N, asked questions, and stopped.
 *
 * A worker that dies is logged and its slot taken at once by a standby: a worker
 * forked ahead, its modules loaded and memberships followed, that has not yet been
 * told to start. A cold start is ~0.8 s on an idle 2-core host and over 2 s on a busy
 * one (Node's start and module loading); the standby makes a replacement accept in
 * well under that. A new standby is forked behind it.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { Asker } from './ask.js';
import { isMessage, isPinNews, type Answers, type Loads, type PinNews, type PinRequest, type Questions, type ToControlPlane, type ToWorker, type Topic } from './messages.js';
import { TurnBatch } from './turn-batch.js';
import type { WorkerState } from '../admin/types.js';

/** A worker that dies sooner than this after its fork is replaced only after this long (no crash loop at full speed). */
const MIN_LIFETIME_MS = 1_000;
/** After a stop's drain timeout, how long workers get to exit before they are killed. */
const STOP_GRACE_MS = 5_000;
/** The standby's slot until it takes a real one. */
const STANDBY = 0;

export interface WorkerHandle {
  /** 1..N; STANDBY (0) for the standby. */
  slot: number;
  readonly worker: Worker;
  readonly forkedAt: number;
  state: WorkerState;
  /** It said hello: its handlers are in place, so messages sent now reach it. */
  greeted: boolean;
  /** Why it could not start, as it said before exiting. */
  failure: string | null;
  /** Per listener, the newest membership version this worker said it routes by. */
  readonly applied: Map<string, number>;
  /** Pin answers and broadcasts to it, sent once per turn together (turn-batch.ts). */
  readonly pinNews: TurnBatch<PinNews>;
}

export interface WorkerEvents {
  /** Its handlers are in place: send it every membership (a worker with a slot is told to start next). */
  hello(handle: WorkerHandle): void;
  applied(handle: WorkerHandle, listener: string, version: number): void;
  /** It accepts on every listener (addresses as bound). */
  ready(handle: WorkerHandle, listeners: readonly { readonly name: string; readonly address: string }[]): void;
  evidence(listener: string, upstream: string, ok: boolean, reason: string): void;
  /** A learned pin read or written through a worker (TETHER_STORE=memory: the control plane holds the pins). */
  pin(handle: WorkerHandle, request: PinRequest): void;
  /** Its open connections per upstream (loads.ts). */
  loads(handle: WorkerHandle, loads: Loads): void;
  /** It takes a slot and is told to start next: lend it its shares (lease-ledger.ts). */
  starting(handle: WorkerHandle): void;
  /** It filled its lease on `listener` (from `books`) and holds `wanted` connections. */
  leaseAsk(handle: WorkerHandle, listener: string, books: number, wanted: number): void;
  /** It gave back `count` of its lease on `listener` (from `books`). */
  leaseReturn(handle: WorkerHandle, listener: string, books: number, count: number): void;
  /** It exited: nothing it owes (acks, answers) will come. */
  gone(handle: WorkerHandle): void;
}

export class WorkerSet {
  readonly #count: number;
  readonly #logger: Logger;
  readonly #events: WorkerEvents;
  readonly #bySlot = new Map<number, WorkerHandle>();
  #standby: WorkerHandle | null = null;
  readonly #asker = new Asker<Answers>();
  #stopping = false;
  /** Settles the start: every slot's first worker ready, or one of them failed. */
  #started: { resolve: () => void; reject: (err: Error) => void } | null = null;
  readonly #exitWaiters = new Set<() => void>();

  constructor(count: number, logger: Logger, events: WorkerEvents) {
    this.#count = count;
    this.#logger = logger;
    this.#events = events;
  }

  /** Forks every worker; resolves once all accept (then forks the standby), rejects if one exits first. */
  start(): Promise<void> {
    // The kernel distributes connections over the workers' accept calls; round-robin
    // through this process would cost an IPC message per connection.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    return new Promise((resolve, reject) => {
      this.#started = {
        resolve: () => {
          this.#forkStandby(0);
          resolve();
        },
        reject,
      };
      for (let slot = 1; slot <= this.#count; slot++) this.#fork(slot);
    });
  }

  /** The workers in slots (not the standby). */
  handles(): WorkerHandle[] {
    return [...this.#bySlot.values()];
  }

  /** The standby, if one is forked. */
  get standby(): WorkerHandle | null {
    return this.#standby;
  }

  /** Pin news leaves once per turn, together; anything else at once, after it. */
  send(handle: WorkerHandle, message: ToWorker): boolean {
    if (!handle.worker.isConnected()) return false;
    if (isPinNews(message)) {
      handle.pinNews.add(message);
      return true;
    }
    handle.pinNews.flush();
    return write(handle.worker, message);
  }

  /** To every worker that said hello, the standby included (the others get everything when they do). */
  broadcast(message: ToWorker, except: WorkerHandle | null = null): void {
    for (const handle of this.#all()) if (handle.greeted && handle !== except) this.send(handle, message);
  }

  ask<T extends Topic>(handle: WorkerHandle, topic: T, question: Questions[T], timeoutMs: number): Promise<Answers[T] | null> {
    return this.#asker.ask<T>(handle, (id) => this.send(handle, { type: 'ask', id, topic, question } as ToWorker), timeoutMs);
  }

  /** Every worker drains (or closes, with null) and exits; resolves once none is left. */
  stop(drainTimeoutMs: number | null): Promise<void> {
    this.#stopping = true;
    for (const handle of this.#all()) {
      handle.state = 'stopping';
      this.send(handle, { type: 'stop', drainTimeoutMs });
    }
    const grace = (drainTimeoutMs ?? 0) + STOP_GRACE_MS;
    const killer = setTimeout(() => {
      for (const handle of this.#all()) {
        this.#logger.warn({ worker: handle.slot, workerPid: handle.worker.process.pid }, 'worker did not exit after its drain: killing it');
        handle.worker.kill('SIGKILL');
      }
    }, grace);
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.#all().length > 0) return;
        this.#exitWaiters.delete(check);
        clearTimeout(killer);
        resolve();
      };
      this.#exitWaiters.add(check);
      check();
    });
  }

  #all(): WorkerHandle[] {
    return this.#standby === null ? this.handles() : [...this.handles(), this.#standby];
  }

  #fork(slot: number): WorkerHandle {
    const worker = cluster.fork();
    const pinNews = new TurnBatch<PinNews>((items) => write(worker, { type: 'pins', items }));
    const handle: WorkerHandle = { slot, worker, forkedAt: Date.now(), state: 'starting', greeted: false, failure: null, applied: new Map(), pinNews };
    if (slot === STANDBY) this.#standby = handle;
    else this.#bySlot.set(slot, handle);
    worker.on('message', (message: unknown) => this.#onMessage(handle, message));
    worker.on('exit', (code: number | null, signal: string | null) => this.#onExit(handle, code, signal));
    // A channel error is followed by the exit, which is what we act on.
    worker.on('error', (err) => this.#logger.debug({ err, worker: slot }, 'worker channel error'));
    return handle;
  }

  #forkStandby(delayMs: number): void {
    setTimeout(() => {
      if (!this.#stopping && this.#standby === null) this.#fork(STANDBY);
    }, delayMs);
  }

  #onMessage(handle: WorkerHandle, message: unknown): void {
    if (!isMessage<ToControlPlane>(message)) return;
    switch (message.type) {
      case 'hello':
        // Forked just before a stop, it missed the order (nothing listened yet): it has nothing to drain.
        if (this.#stopping) {
          this.send(handle, { type: 'stop', drainTimeoutMs: null });
          return;
        }
        handle.greeted = true;
        this.#events.hello(handle);
        if (handle.slot === STANDBY) handle.state = 'standby';
        else this.#start(handle);
        return;
      case 'applied':
        if ((handle.applied.get(message.listener) ?? -1) < message.version) handle.applied.set(message.listener, message.version);
        this.#events.applied(handle, message.listener, message.version);
        return;
      case 'failed':
        handle.failure = message.error;
        return;
      case 'ready':
        this.#events.ready(handle, message.listeners);
        this.#ready(handle);
        return;
      case 'evidence':
        this.#events.evidence(message.listener, message.upstream, message.ok, message.reason);
        return;
      case 'answer':
        this.#asker.answered(message.id, message.answer);
        return;
      case 'loads':
        this.#events.loads(handle, message.loads);
        return;
      case 'pins':
        for (const item of message.items) this.#events.pin(handle, item);
        return;
      case 'lease-ask':
        this.#events.leaseAsk(handle, message.listener, message.books, message.wanted);
        return;
      case 'lease-return':
        this.#events.leaseReturn(handle, message.listener, message.books, message.count);
        return;
    }
  }

  #start(handle: WorkerHandle): void {
    this.#events.starting(handle);
    this.send(handle, { type: 'start' });
  }

  #ready(handle: WorkerHandle): void {
    if (this.#stopping) return;
    handle.state = 'running';
    this.#logger.info({ worker: handle.slot, workerPid: handle.worker.process.pid }, 'worker accepting');
    if (this.#started !== null && this.#bySlot.size === this.#count && this.handles().every((h) => h.state === 'running')) {
      this.#started.resolve();
      this.#started = null;
    }
  }

  #onExit(handle: WorkerHandle, code: number | null, signal: string | null): void {
    const workerPid = handle.worker.process.pid;
    if (this.#standby === handle) this.#standby = null;
    if (this.#bySlot.get(handle.slot) === handle) this.#bySlot.delete(handle.slot);
    this.#asker.forget(handle);
    this.#events.gone(handle);
    if (this.#stopping) {
      this.#logger.info({ worker: handle.slot, workerPid, code, signal }, 'worker exited');
      for (const check of [...this.#exitWaiters]) check();
      return;
    }
    if (this.#started !== null) {
      // Still starting up: a worker that cannot start (a port taken, a bad file) fails the whole start.
      const why = handle.failure ?? `exited while starting (code ${code}, signal ${signal})`;
      this.#started.reject(new Error(`worker ${handle.slot} (pid ${workerPid}): ${why}`));
      this.#started = null;
      return;
    }
    const delay = Date.now() - handle.forkedAt < MIN_LIFETIME_MS ? MIN_LIFETIME_MS : 0;
    if (handle.slot === STANDBY) {
      this.#logger.error({ workerPid, code, signal, replaceInMs: delay }, 'standby worker exited unexpectedly; forking another');
      this.#forkStandby(delay);
      return;
    }
    this.#logger.error({ worker: handle.slot, workerPid, code, signal }, 'worker exited unexpectedly: its connections are lost; replacing it');
    this.#replace(handle.slot, delay);
  }

  /** The standby takes the slot at once when it is ready for it; else a fresh fork does. */
  #replace(slot: number, delayMs: number): void {
    const standby = this.#standby;
    if (standby !== null && standby.greeted) {
      this.#standby = null;
      standby.slot = slot;
      standby.state = 'starting';
      this.#bySlot.set(slot, standby);
      this.#start(standby);
      this.#forkStandby(delayMs);
      return;
    }
    setTimeout(() => {
      if (!this.#stopping && !this.#bySlot.has(slot)) this.#fork(slot);
    }, delayMs);
  }
}

function write(worker: Worker, message: ToWorker): boolean {
  if (!worker.isConnected()) return false;
  // The callback takes a channel closed under us (the worker died): its exit follows.
  worker.send(message, undefined, () => undefined);
  return true;
}
