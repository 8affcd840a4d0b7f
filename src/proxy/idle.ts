/**
 * TETHER_IDLE_TIMEOUT_MS for relayed connections: one sweep per listener over its
 * sessions, instead of Node's socket.setTimeout, which keeps a Timeout and a bound
 * function per socket (about 170 bytes of every idle connection) and refreshes the
 * timer on every chunk read.
 */

/** Sessions as the sweeper sees them. */
export interface IdleSession {
  /** Relaying (not connecting, not closed). */
  readonly open: boolean;
  /** `idleClock.now` when a byte last moved, either way. */
  activeAt: number;
  close(reason: string, outcome: 'timeout'): void;
}

/**
 * A coarse clock for activity stamps, refreshed by every sweep, so stamping a read
 * costs a property load; it is at most one sweep interval behind.
 */
export const idleClock = { now: performance.now() };

const MIN_INTERVAL_MS = 20;
const MAX_INTERVAL_MS = 5_000;

/** An eighth of the timeout, within 20 ms..5 s. */
function intervalFor(idleMs: number): number {
  return Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.round(idleMs / 8)));
}

function sweep(sweeper: IdleSweeper): void {
  sweeper.sweep();
}

/**
 * Closes the open sessions of one listener that have been silent in both directions
 * for the idle timeout. Stamps can be one interval old, so a session closes between
 * `idleMs` and `idleMs` plus two intervals (1.25 × `idleMs` for timeouts of 40 s or
 * less) after its last byte. The timer runs only while the listener has sessions.
 */
export class IdleSweeper {
  readonly #sessions: ReadonlySet<IdleSession>;
  readonly #idleMs: () => number;
  #timer: NodeJS.Timeout | null = null;

  /** `idleMs` is read at every sweep, so a reload takes effect. */
  constructor(sessions: ReadonlySet<IdleSession>, idleMs: () => number) {
    this.#sessions = sessions;
    this.#idleMs = idleMs;
  }

  /** A session started relaying: sweep while there are sessions. Stamps it. */
  track(session: IdleSession): void {
    if (this.#timer === null && this.#idleMs() > 0) {
      idleClock.now = performance.now();
      this.#schedule();
    }
    session.activeAt = idleClock.now;
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  sweep(): void {
    this.#timer = null;
    const now = (idleClock.now = performance.now());
    const idleMs = this.#idleMs();
    if (idleMs <= 0 || this.#sessions.size === 0) return;
    const silentFor = idleMs + intervalFor(idleMs);
    // close() only destroys sockets; sessions leave the set on their 'close' events.
    for (const session of this.#sessions) {
      if (session.open && now - session.activeAt >= silentFor) session.close('idle timeout', 'timeout');
    }
    this.#schedule();
  }

  #schedule(): void {
    this.#timer = setTimeout(sweep, intervalFor(this.#idleMs()), this);
    this.#timer.unref();
  }
}
