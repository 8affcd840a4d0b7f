/**
 * Where lookup tables are built: a piscina pool of TETHER_RING_THREADS worker
 * threads, or (TETHER_RING_THREADS=0, and for benchmarks that compare) inline on the
 * calling thread. Both hand back the same TableData; the pool that routes wraps it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { RingCache } from '../balancer/table-cache.js';
import type { Algorithm, BuildOptions, Member, TableData } from '../balancer/types.js';
import { RingBuildError, errorFromData } from '../errors.js';
import type { RingBuildResult, RingBuildTask } from './ring-build.js';

export interface BuildRequest {
  readonly algorithm: Algorithm;
  /**
   * Indices in the built table refer to this list. A worker build returns a table
   * whose `members` is this very list (read as name and weight at the call).
   */
  readonly members: readonly Member[];
  readonly options: BuildOptions;
  /**
   * Buffers of a retired table the builder may write the new one into (moved to the
   * worker: they are unusable here afterwards). See balancer/arena.ts.
   */
  readonly spare?: readonly ArrayBuffer[];
  /**
   * The series of tables this one continues (one per listener pool). A builder may
   * derive a ring from the last one it built under the same key (balancer/
   * table-cache.ts); the result is the same either way. Without a key, a full build.
   */
  readonly key?: string;
}

export interface BuiltTable {
  readonly data: TableData;
  /** Time the build itself took, where it ran (tether_ring_build_seconds). */
  readonly seconds: number;
  /** Derived from the previous ring of its series rather than built whole. */
  readonly incremental: boolean;
}

/** Builds tables somewhere; rejects with a TetherError (code kept) when a build fails. */
export interface TableBuilder {
  /** `workers` or `inline`, for logs and /metrics-free introspection. */
  readonly kind: 'workers' | 'inline';
  build(request: BuildRequest): Promise<BuiltTable>;
  /** Stop the threads; builds still running reject. */
  close(): Promise<void>;
}

/** TETHER_RING_THREADS: 0 builds inline on the main thread, N > 0 in N worker threads. */
export function createTableBuilder(threads: number): TableBuilder {
  return threads === 0 ? new InlineTableBuilder() : new WorkerTableBuilder(threads);
}

/**
 * Builds on the calling thread: every build stalls the event loop for its whole
 * duration (a whole ring: 20 ms at 1,000 members, ~110 ms at 5,000; one derived from
 * the previous ring after a one-member change: ~1 ms and ~5 ms). For comparison and
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

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/**
 * The compiled task file. From dist/ it sits next to this module; when tests run the
 * TypeScript sources (vitest imports src/ directly), Node cannot load a .ts worker,
 * so the compiled one in dist/ is used (`npm test` builds first).
 */
export function ringBuildWorkerFile(): string {
  const candidates = [new URL('./ring-build.js', import.meta.url), new URL('../../dist/workers/ring-build.js', import.meta.url)];
  for (const url of candidates) {
    const file = fileURLToPath(url);
    if (existsSync(file)) return file;
  }
  throw new RingBuildError(`ring-build worker not found (looked for ${candidates.map((u) => fileURLToPath(u)).join(', ')}; run npm run build)`);
}

export class WorkerTableBuilder implements TableBuilder {
  readonly kind = 'workers' as const;
  readonly #pool: Piscina<RingBuildTask, RingBuildResult>;
  #closing: Promise<void> | null = null;

  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('threads must be a positive integer');
    this.#pool = new Piscina<RingBuildTask, RingBuildResult>({
      filename: ringBuildWorkerFile(),
      // Kept warm: a build never waits for a thread to start.
      minThreads: threads,
      maxThreads: threads,
      // One task per thread at a time: a build is pure CPU.
      concurrentTasksPerWorker: 1,
      // piscina's run/wait histograms cost the routing thread ~0.1 ms a task; unused.
      recordTiming: false,
    });
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  async build(request: BuildRequest): Promise<BuiltTable> {
    if (this.#closing !== null) throw new RingBuildError('table builder is closed');
    const { members } = request;
    // Names and weights as two flat lists: cheaper to clone than N small objects.
    const names = new Array<string>(members.length);
    const weights = new Uint16Array(members.length);
    for (let i = 0; i < members.length; i++) {
      names[i] = members[i]!.name;
      weights[i] = members[i]!.weight;
    }
    let result: RingBuildResult;
    try {
      const spare = request.spare ?? [];
      result = await this.#pool.run(
        { algorithm: request.algorithm, names, weights, vnodes: request.options.vnodes, maglevSize: request.options.maglevSize, spare, key: request.key },
        { transferList: [...spare] },
      );
    } catch (err) {
      // The worker died, could not load, or the pool was closed.
      throw new RingBuildError(`ring build worker failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (result === null || typeof result !== 'object') throw new RingBuildError('ring build worker returned no table');
    if (!result.ok) throw errorFromData(result.code, result.message);
    // The indices in the arrays refer to the members as sent.
    return { data: { ...result.arrays, members } as TableData, seconds: result.seconds, incremental: result.incremental };
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.destroy();
    return this.#closing;
  }
}
