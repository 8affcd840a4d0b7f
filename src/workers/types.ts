/** What the rest of tether sees of the worker processes of TETHER_WORKERS > 1. */

/** One worker as GET /workers answers it. */
export interface WorkerView {
  /** Its slot, 1..N: a replacement takes the slot of the worker it replaces. */
  readonly id: number;
  readonly pid: number;
  readonly state: WorkerState;
  /** Connections open now, over every listener (0 when it did not answer). */
  readonly active: number;
  /** Connections accepted since it started. */
  readonly total: number;
}

/**
 * starting: forked, not yet accepting; running: accepting; stopping: draining on a
 * signal; unresponsive: running but did not answer within the ask timeout; standby:
 * loaded and following the memberships, not accepting, ready to take the slot of a
 * worker that dies (id 0).
 */
export type WorkerState = 'starting' | 'running' | 'stopping' | 'unresponsive' | 'standby';
