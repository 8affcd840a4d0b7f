/**
 * Pacing for long table builds in a build thread: work in short slices with a short
 * rest between them, so the build never holds a CPU core for long.
 *
 * Why: a build thread runs at the lowest priority (builders/ring-build.ts), but the
 * kernel does not take a core from it the moment the thread that relays bytes (or
 * the upstream, or the client on the same host) wakes up: on a 2-core Linux 6.18
 * host a 1.8 ms build at nice 19 still added ~0.9 ms to a proxied echo's p99
 * (one change every 50 ms). The same work cut into 0.1 ms slices with a rest after
 * each added none measurable (native-bench/ring-rebuild.mjs). A build then takes
 * longer from start to end, never more CPU.
 *
 * Builders call pace() between stretches of work (a copied run of a ring, a member
 * hashed, a merge step); it costs a clock read. Each thread has its own pacer: the
 * build thread installs one at start-up; anywhere else (inline builds on the routing
 * thread, which must never sleep) pace() does nothing.
 */

/** A pacer: call between stretches of work; it decides when to rest. */
export type Pace = () => void;

const never: Pace = () => {};
let current: Pace = never;

/** The calling thread's pacer: no-op unless installed. */
export function pace(): void {
  current();
}

/** Install `pacer` for this thread (a build thread at start-up); null removes it. */
export function setPace(pacer: Pace | null): void {
  current = pacer ?? never;
}

export interface SlicedPaceOptions {
  /** Longest stretch of work between rests, ms. */
  readonly sliceMs: number;
  /** How long to rest, ms (the kernel's timer slack adds ~50 us). */
  readonly restMs: number;
}

/** What a sliced pacer did: for tests and measurement. */
export interface PaceCounts {
  readonly rests: number;
}

/**
 * Rests (blocks this thread in Atomics.wait: a real sleep, the core is free) once a
 * stretch of work since the last rest reaches sliceMs. `begin()` starts a fresh
 * slice: call it when a build starts, after the thread sat idle.
 */
export function slicedPace(options: SlicedPaceOptions): { readonly pace: Pace; begin(): void; readonly counts: PaceCounts } {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const counts = { rests: 0 };
  let sliceStart = performance.now();
  return {
    pace: () => {
      if (performance.now() - sliceStart < options.sliceMs) return;
      Atomics.wait(cell, 0, 0, options.restMs);
      counts.rests++;
      sliceStart = performance.now();
    },
    begin: () => {
      sliceStart = performance.now();
    },
    counts,
  };
}
