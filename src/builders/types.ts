/** What a table builder takes and gives back, wherever it builds (inline.ts, worker.ts). */
import type { Algorithm, BuildOptions, Member, TableData } from '../hashing/types.js';

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
   * worker: they are unusable here afterwards). See hashing/ring/arena.ts.
   */
  readonly spare?: readonly ArrayBuffer[];
  /**
   * The series of tables this one continues (one per listener pool). A builder may
   * derive a ring from the last one it built under the same key (hashing/ring/
   * cache.ts); the result is the same either way. Without a key, a full build.
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
  /** The series `key` ends (its pool closed): drop what was kept to derive its next table. */
  forget(key: string): void;
  /** Stop the threads; builds still running reject. */
  close(): Promise<void>;
}
