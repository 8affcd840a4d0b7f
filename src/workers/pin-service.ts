/**
 * The control plane's side of learned pins with TETHER_STORE=memory: it holds the one
 * memory store, answers the workers' reads and writes, and tells every other worker
 * of a pin set or deleted, so their caches stay true.
 */
import type { Store } from '../store/types.js';
import type { PinRequest } from './messages.js';
import type { WorkerHandle, WorkerSet } from './worker-set.js';

export class PinService {
  readonly #workers: WorkerSet;
  readonly #store: () => Store | null;

  constructor(workers: WorkerSet, store: () => Store | null) {
    this.#workers = workers;
    this.#store = store;
  }

  async handle(from: WorkerHandle, request: PinRequest): Promise<void> {
    const store = this.#store();
    if (store === null) return;
    const pins = store.pins(request.listener);
    switch (request.type) {
      case 'pin-get':
        this.#workers.send(from, { type: 'pin-answer', id: request.id, answer: { upstream: await pins.get(request.key) } });
        return;
      case 'pin-set':
        await pins.set(request.key, request.upstream, request.ttlS);
        this.#workers.broadcast({ type: 'pin', listener: request.listener, key: request.key, upstream: request.upstream, ttlS: request.ttlS }, from);
        this.#workers.send(from, { type: 'pin-answer', id: request.id, answer: { upstream: request.upstream } });
        return;
      case 'pin-touch':
        for (const key of request.keys) void pins.touch(key, request.ttlS);
        return;
      case 'pin-delete':
        await pins.delete(request.key);
        this.#workers.broadcast({ type: 'pin', listener: request.listener, key: request.key, upstream: null, ttlS: 0 }, from);
        return;
    }
  }
}
