import type { ListenerConfig } from '../../config/types.js';
import { idleClock } from '../idle.js';
import type { HttpConnection } from './connection.js';

const MIN_INTERVAL_MS = 20;
const MAX_INTERVAL_MS = 1_000;

/**
 * The deadlines of a listener's client connections, on one timer: a head not whole
 * within TETHER_HEAD_TIMEOUT_MS (408), and silence both ways for
 * TETHER_IDLE_TIMEOUT_MS. Checked every tenth of the head timeout (an eighth of
 * the idle one, if shorter), within 20 ms..1 s, so a deadline is overshot by at most
 * that. The timer runs only while there are connections.
 */
export class ConnectionSweeper {
  readonly #connections: ReadonlySet<HttpConnection>;
  readonly #config: () => ListenerConfig;
  #timer: NodeJS.Timeout | null = null;

  constructor(connections: ReadonlySet<HttpConnection>, config: () => ListenerConfig) {
    this.#connections = connections;
    this.#config = config;
  }

  /** A connection came: sweep while there are any. */
  track(): void {
    if (this.#timer === null) this.#schedule();
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The timeouts changed (a reload): the next sweep comes at the new pace. */
  reschedule(): void {
    if (this.#timer === null) return;
    this.stop();
    this.#schedule();
  }

  sweep(): void {
    this.#timer = null;
    const now = performance.now();
    idleClock.now = now;
    const { headTimeoutMs, idleTimeoutMs } = this.#config();
    // sweep() may close connections, which leave the set on their 'close' events.
    for (const connection of this.#connections) connection.sweep(now, headTimeoutMs, idleTimeoutMs);
    if (this.#connections.size > 0) this.#schedule();
  }

  #schedule(): void {
    const { headTimeoutMs, idleTimeoutMs } = this.#config();
    let interval = headTimeoutMs / 10;
    if (idleTimeoutMs > 0) interval = Math.min(interval, idleTimeoutMs / 8);
    this.#timer = setTimeout(sweepConnections, Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.round(interval))), this);
    this.#timer.unref();
  }
}

function sweepConnections(sweeper: ConnectionSweeper): void {
  sweeper.sweep();
}
