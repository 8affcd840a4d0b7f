import { RingBuildError } from '../errors.js';
import { RingCache } from '../hashing/ring/cache.js';
import type { BuildRequest, BuiltTable, TableBuilder } from './types.js';

/**
 * Builds on the calling thread: every build stalls the event loop for its whole
 * duration (a whole ring: 20 ms at 1,000 members, ~110 ms at 5,000; one derived from
 * the previous ring after a one-member change: ~0.3 ms and ~1 ms). For comparison and
 * for hosts where threads are not wanted.
 */
export class InlineTableBuilder implements TableBuilder {
  readonly kind = 'inline' as const;
  /** Remembers each series' last ring by reference: inline tables are never written again. */
  readonly #cache = new RingCache({ copy: false });
  #closed = false;

  build(request: BuildRequest): Promise<BuiltTable> {
    if (this.#closed) return Promise.reject(new RingBuildError('table builder is closed'));
    try {
      const started = performance.now();
      const { data, incremental } = this.#cache.build(request.key, request.algorithm, request.members, request.options);
      return Promise.resolve({ data, seconds: (performance.now() - started) / 1000, incremental });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  forget(key: string): void {
    this.#cache.forget(key);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
