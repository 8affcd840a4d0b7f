/**
 * Where lookup tables are built: a piscina pool of TETHER_RING_THREADS worker
 * threads, or (TETHER_RING_THREADS=0, and for benchmarks that compare) inline on the
 * calling thread (inline.ts). Both hand back the same TableData; the pool that routes
 * wraps it. This file: the worker threads.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { TableData } from '../hashing/types.js';
import { asError, errorFromData, errorMessage, RingBuildError } from '../errors.js';
import { MemberListSender, type MemberListMessage } from './member-list.js';
import type { BuildRequest, BuiltTable, TableBuilder } from './types.js';
import type { RingBuildResult, RingBuildTask } from './ring-build.js';

/**
 * The compiled task file (ring-build-thread.cjs: why CommonJS, see there). From dist/
 * it sits next to this module; when tests run the TypeScript sources (vitest imports
 * src/ directly), Node cannot load a .ts worker, so the compiled one in dist/ is used
 * (`npm test` builds first).
 */
export function ringBuildWorkerFile(): string {
  const candidates = [new URL('./ring-build-thread.cjs', import.meta.url), new URL('../../dist/builders/ring-build-thread.cjs', import.meta.url)];
  for (const url of candidates) {
    const file = fileURLToPath(url);
    if (existsSync(file)) return file;
  }
  throw new RingBuildError(`ring-build worker not found (looked for ${candidates.map((u) => fileURLToPath(u)).join(', ')}; run npm run build)`);
}

/**
 * A build that has not answered by then is ended (its thread is stopped and a new one
 * started) and retried by the pool. The largest ring (8M points) builds in a few
 * seconds here; only a thread that hangs comes near this.
 */
const BUILD_TIMEOUT_MS = 60_000;

export interface WorkerBuilderOptions {
  /**
   * A build thread failed outside any build (it could not load, or died between
   * tasks). Builds meanwhile reject and are retried by the pool; without this
   * listener piscina's 'error' event would end the process.
   */
  readonly onThreadError?: (error: Error) => void;
  /** The task file (tests give a broken one); default ringBuildWorkerFile(). */
  readonly filename?: string;
}

export class WorkerTableBuilder implements TableBuilder {
  readonly kind = 'workers' as const;
  readonly #pool: Piscina<RingBuildTask, RingBuildResult>;
  /** One per build in flight: a thread failure or a timeout ends them. */
  readonly #running = new Set<AbortController>();
  /** Sends each series' member list as the positions changed since the last one sent. */
  readonly #lists = new MemberListSender();
  /** Builds whose member list had to be sent again whole (a thread lacked the edit's base). */
  #resent = 0;
  #closing: Promise<void> | null = null;

  constructor(threads: number, options: WorkerBuilderOptions = {}) {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('threads must be a positive integer');
    this.#pool = new Piscina<RingBuildTask, RingBuildResult>({
      filename: options.filename ?? ringBuildWorkerFile(),
      // Kept warm: a build never waits for a thread to start.
      minThreads: threads,
      maxThreads: threads,
      // One task per thread at a time: a build is pure CPU.
      concurrentTasksPerWorker: 1,
      // piscina's run/wait histograms cost the routing thread ~0.1 ms a task; unused.
      recordTiming: false,
    });
    const onThreadError = options.onThreadError;
    this.#pool.on('error', (err: unknown) => {
      const error = asError(err);
      onThreadError?.(error);
      // piscina leaves a task queued for a thread that never comes: end them all, the pool retries.
      for (const build of this.#running) build.abort(error);
    });
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  /** How many builds sent their member list twice: an edit first, whole after a stale answer. */
  get resent(): number {
    return this.#resent;
  }

  async build(request: BuildRequest): Promise<BuiltTable> {
    if (this.#closing !== null) throw new RingBuildError('table builder is closed');
    const { members, key } = request;
    let result = await this.#run(request, this.#lists.encode(key, members), request.spare ?? []);
    // The thread did not have the list the edit was made against (another thread
    // built this series last, or it is new): once more with the list whole.
    if (!result.ok && 'stale' in result) {
      this.#resent++;
      result = await this.#run(request, this.#lists.encode(key, members, true), []);
    }
    if (!result.ok) throw 'stale' in result ? new RingBuildError('ring build worker lost the member list') : errorFromData(result.code, result.message);
    // The indices in the arrays refer to the members as sent.
    return { data: { ...result.arrays, members } as TableData, seconds: result.seconds, incremental: result.incremental };
  }

  forget(key: string): void {
    this.#lists.forget(key);
  }

  async #run(request: BuildRequest, list: MemberListMessage, spare: readonly ArrayBuffer[]): Promise<RingBuildResult> {
    const build = new AbortController();
    const timer = setTimeout(() => build.abort(new Error(`no answer in ${BUILD_TIMEOUT_MS / 1000} s`)), BUILD_TIMEOUT_MS);
    this.#running.add(build);
    let result: RingBuildResult;
    try {
      result = await this.#pool.run(
        { algorithm: request.algorithm, members: list, vnodes: request.options.vnodes, maglevSize: request.options.maglevSize, spare, key: request.key },
        { transferList: [...spare], signal: build.signal },
      );
    } catch (err) {
      // The worker died, could not load, timed out, or the pool was closed.
      const cause = build.signal.aborted ? build.signal.reason : err;
      throw new RingBuildError(`ring build worker failed: ${errorMessage(cause)}`);
    } finally {
      clearTimeout(timer);
      this.#running.delete(build);
    }
    if (result === null || typeof result !== 'object') throw new RingBuildError('ring build worker returned no table');
    return result;
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.destroy();
    return this.#closing;
  }
}
