/**
 * The piscina task: builds one lookup table in a worker thread and hands its typed
 * arrays back by transfer (moved, not copied: a 5,000-member ring is 6 MiB of points
 * and owners). Each thread remembers the last ring it built for each listener (by the
 * task's `key`) and derives the next one from it when few members changed
 * (hashing/ring/cache.ts); otherwise, and for Maglev, it builds whole. Failures come back as `{ code, message }` data, never as a thrown
 * Error: an Error subclass posted between threads arrives as a plain Error and its
 * TETHER_ERR_* code would be lost.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { SpareBuffers } from '../hashing/ring/arena.js';
import { tableBuffers } from '../hashing/tables.js';
import { setPace, slicedPace } from '../hashing/pace.js';
import { RingCache } from '../hashing/ring/cache.js';
import type { Algorithm, TableData } from '../hashing/types.js';
import { MemberListReceiver, type MemberListMessage } from './member-list.js';
import { errorMessage } from '../errors.js';

/**
 * A table without its member list: the caller sent the members and keeps them, so
 * only the typed arrays travel back (cloning 5,000 member objects on the routing
 * thread would cost more than the transfer of everything else).
 */
export type TableArrays = TableData extends infer T ? (T extends TableData ? Omit<T, 'members'> : never) : never;

export interface RingBuildTask {
  readonly algorithm: Algorithm;
  /**
   * Members by name and weight, in the order the table's indices will refer to:
   * whole, or as an edit of the list last sent for the same key (member-list.ts).
   */
  readonly members: MemberListMessage;
  readonly vnodes: number;
  readonly maglevSize?: number | undefined;
  /** Buffers of a table the routing thread retired, moved here to be written again. */
  readonly spare?: readonly ArrayBuffer[] | undefined;
  /** The series this table continues (a listener's pool): the ring last built under it here is the base of an incremental build. */
  readonly key?: string | undefined;
}

export type RingBuildResult =
  | { readonly ok: true; readonly arrays: TableArrays; readonly seconds: number; readonly incremental: boolean }
  | { readonly ok: false; readonly code: string; readonly message: string }
  /** The task's member list was an edit of a list this thread does not have: send it whole. */
  | { readonly ok: false; readonly stale: true };

/**
 * Builds are background work and the event loop that relays bytes must win every
 * contest for a core, so this thread asks the kernel for the lowest priority (nice
 * 19: at 5,000 upstreams it took the proxied echo p99 during rebuilds from +4.5 to
 * +3.1 ms over idle against nice 10, on 2 cores; SCHED_IDLE measured the same).
 * On Linux setpriority() on a thread id affects that thread alone; elsewhere, or
 * when refused, the build simply runs at normal priority.
 */
function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 19);
  } catch {
    // Not Linux, or not allowed: nothing to do.
  }
}

lowerThreadPriority();

/**
 * Builds rest 0.02 ms (0.06-0.07 ms with the kernel's timer slack) after each 0.1 ms
 * of work, so the relaying thread, and whatever else shares the host, finds a core
 * free whenever it wakes (hashing/pace.ts). A 1 ms build at 5,000 upstreams then
 * takes ~1.6 ms from start to end; a whole 800k-point ring ~40% longer.
 */
const pacer = slicedPace({ sliceMs: 0.1, restMs: 0.02 });
setPace(pacer.pace);

/** This thread's last ring per series: a private copy, as the built arrays leave the thread. */
const cache = new RingCache({ copy: true });
/** This thread's last member list per series, the base of the next edit. */
const lists = new MemberListReceiver();

/** A piscina "movable": the result object, with every table array in the transfer list. */
class MovedResult {
  readonly #value: RingBuildResult;
  readonly #buffers: ArrayBuffer[];
  constructor(value: RingBuildResult, buffers: ArrayBuffer[]) {
    this.#value = value;
    this.#buffers = buffers;
  }
  get [transferableSymbol](): ArrayBuffer[] {
    return this.#buffers;
  }
  get [valueSymbol](): RingBuildResult {
    return this.#value;
  }
}

export default function ringBuild(task: RingBuildTask): unknown {
  try {
    pacer.begin();
    const members = lists.decode(task.key, task.members);
    if (members === null) return { ok: false, stale: true } satisfies RingBuildResult;
    const started = performance.now();
    const options = { vnodes: task.vnodes, maglevSize: task.maglevSize };
    // Timed with the cache's copy of the ring: all the work a build costs this thread.
    const { data, incremental } = cache.build(task.key, task.algorithm, members, options, new SpareBuffers(task.spare ?? []));
    const seconds = (performance.now() - started) / 1000;
    const { members: _sent, ...arrays } = data;
    return move(new MovedResult({ ok: true, arrays, seconds, incremental }, tableBuffers(data)) as never);
  } catch (err) {
    const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'TETHER_ERR_RING_BUILD';
    const message = errorMessage(err);
    return { ok: false, code, message } satisfies RingBuildResult;
  }
}
