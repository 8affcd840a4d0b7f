/**
 * The worker processes, on the control plane's side: forked with cluster on one shared
 * listening socket that the kernel hands connections from (SCHED_NONE: no hand-off
 * through this process), kept at N (a worker that dies is logged and replaced in its
 * slot), asked questions, and stopped.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { Asker } from './ask.js';
import { isMessage, type Answers, type Questions, type ToControlPlane, type ToWorker, type Topic } from './messages.js';
import type { WorkerState } from './types.js';

/** A worker that dies sooner than this after its start is replaced only after this long (no crash loop at full speed). */
const MIN_LIFETIME_MS = 1_000;
/** After a stop's drain timeout, how long workers get to exit before they are killed. */
const STOP_GRACE_MS = 5_000;

export interface WorkerHandle {
  readonly slot: number;
  readonly worker: Worker;
  readonly startedAt: number;
  state: WorkerState;
  /** It said hello: its handlers are in place, so messages sent now reach it. */
  greeted: boolean;
  /** Per listener, the newest membership version this worker said it routes by. */
  readonly applied: Map<string, number>;
}

export interface WorkerEvents {
  /** Its handlers are in place: send it every membership, then 'start'. */
  hello(handle: WorkerHandle): void;
  applied(handle: WorkerHandle, listener: string, version: number): void;
  /** It accepts on every listener (addresses as bound). */
  ready(handle: WorkerHandle, listeners: readonly { readonly name: string; readonly address: string }[]): void;
  evidence(listener: string, upstream: string, ok: boolean, reason: string): void;
  /** It exited: nothing it owes (acks, answers) will come. */
  gone(handle: WorkerHandle): void;
}

export class WorkerSet {
  readonly #count: number;
  readonly #logger: Logger;
  readonly #events: WorkerEvents;
  readonly #bySlot = new Map<number, WorkerHandle>();
  readonly #asker = new Asker();
  #stopping = false;
  /** Settles the start: every slot's first worker ready, or one of them failed. */
  #started: { resolve: () => void; reject: (err: Error) => void } | null = null;
  readonly #exitWaiters = new Set<() => void>();

  constructor(count: number, logger: Logger, events: WorkerEvents) {
    this.#count = count;
    this.#logger = logger;
    this.#events = events;
  }

  /** Forks every worker; resolves once all accept, rejects if one exits first. */
  start(): Promise<void> {
    // The kernel distributes connections over the workers' accept calls; round-robin
    // through this process would cost an IPC message per connection.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    return new Promise((resolve, reject) => {
      this.#started = { resolve, reject };
      for (let slot = 1; slot <= this.#count; slot++) this.#fork(slot);
    });
  }

  handles(): WorkerHandle[] {
    return [...this.#bySlot.values()];
  }

  send(handle: WorkerHandle, message: ToWorker): boolean {
    if (!handle.worker.isConnected()) return false;
    // The callback takes a channel closed under us (the worker died): its exit follows.
    handle.worker.send(message, undefined, () => undefined);
    return true;
  }

  /** To every worker that said hello (the others get everything when they do). */
  broadcast(message: ToWorker): void {
    for (const handle of this.#bySlot.values()) if (handle.greeted) this.send(handle, message);
  }

  ask<T extends Topic>(handle: WorkerHandle, topic: T, question: Questions[T], timeoutMs: number): Promise<Answers[T] | null> {
    return this.#asker.ask<T>((id) => this.send(handle, { type: 'ask', id, topic, question } as ToWorker), timeoutMs);
  }

  /** Every worker drains (or closes, with null) and exits; resolves once none is left. */
  stop(drainTimeoutMs: number | null): Promise<void> {
    this.#stopping = true;
    for (const handle of this.#bySlot.values()) {
      handle.state = 'stopping';
      this.send(handle, { type: 'stop', drainTimeoutMs });
    }
    const grace = (drainTimeoutMs ?? 0) + STOP_GRACE_MS;
    const killer = setTimeout(() => {
      for (const handle of this.#bySlot.values()) {
        this.#logger.warn({ worker: handle.slot, workerPid: handle.worker.process.pid }, 'worker did not exit after its drain: killing it');
        handle.worker.kill('SIGKILL');
      }
    }, grace);
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.#bySlot.size > 0) return;
        this.#exitWaiters.delete(check);
        clearTimeout(killer);
        resolve();
      };
      this.#exitWaiters.add(check);
      check();
    });
  }

  #fork(slot: number): void {
    const worker = cluster.fork();
    const handle: WorkerHandle = { slot, worker, startedAt: Date.now(), state: 'starting', greeted: false, applied: new Map() };
    this.#bySlot.set(slot, handle);
    worker.on('message', (message: unknown) => this.#onMessage(handle, message));
    worker.on('exit', (code: number | null, signal: string | null) => this.#onExit(handle, code, signal));
    // A channel error is followed by the exit, which is what we act on.
    worker.on('error', (err) => this.#logger.debug({ err, worker: slot }, 'worker channel error'));
  }

  #onMessage(handle: WorkerHandle, message: unknown): void {
    if (!isMessage<ToControlPlane>(message)) return;
    switch (message.type) {
      case 'hello':
        handle.greeted = true;
        this.#events.hello(handle);
        return;
      case 'applied':
        if ((handle.applied.get(message.listener) ?? -1) < message.version) handle.applied.set(message.listener, message.version);
        this.#events.applied(handle, message.listener, message.version);
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
    }
  }

  #ready(handle: WorkerHandle): void {
    if (this.#stopping) return;
    handle.state = 'running';
    this.#logger.info({ worker: handle.slot, workerPid: handle.worker.process.pid }, 'worker accepting');
    if (this.#started !== null && [...this.#bySlot.values()].every((h) => h.state === 'running') && this.#bySlot.size === this.#count) {
      this.#started.resolve();
      this.#started = null;
    }
  }

  #onExit(handle: WorkerHandle, code: number | null, signal: string | null): void {
    if (this.#bySlot.get(handle.slot) === handle) this.#bySlot.delete(handle.slot);
    this.#events.gone(handle);
    const workerPid = handle.worker.process.pid;
    if (this.#stopping) {
      this.#logger.info({ worker: handle.slot, workerPid, code, signal }, 'worker exited');
      for (const check of [...this.#exitWaiters]) check();
      return;
    }
    if (this.#started !== null) {
      // Still starting up: a worker that cannot start (a port taken, a bad file) fails the whole start.
      this.#started.reject(new Error(`worker ${handle.slot} (pid ${workerPid}) exited while starting (code ${code}, signal ${signal})`));
      this.#started = null;
      return;
    }
    const lived = Date.now() - handle.startedAt;
    const delay = lived < MIN_LIFETIME_MS ? MIN_LIFETIME_MS : 0;
    this.#logger.error({ worker: handle.slot, workerPid, code, signal, replaceInMs: delay }, 'worker exited unexpectedly: its connections are lost; replacing it');
    setTimeout(() => {
      if (!this.#stopping && !this.#bySlot.has(handle.slot)) this.#fork(handle.slot);
    }, delay);
  }
}
