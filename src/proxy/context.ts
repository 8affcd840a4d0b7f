import type { ListenerConfig } from '../config/types.js';
import type { UpstreamPool } from '../routing/pool.js';
import type { RouteVia } from '../routing/types.js';
import type { Upstream } from '../routing/upstream.js';
import type { IdleSweeper } from './idle.js';
import type { Outcome } from './types.js';

/**
 * One routed unit as metrics count it: a connection in tcp mode; in http mode a
 * request, an upgraded connection, or a connection turned away before routing.
 */
export interface RoutedRecord {
  readonly via: RouteVia;
  readonly upstream: Upstream | null;
  readonly outcome: Outcome;
  readonly fromClient: number;
  readonly toClient: number;
}

/** Passive health evidence from the data plane. */
export interface HealthReporter {
  reportFailure(name: string, reason: string): void;
  reportSuccess(name: string): void;
}

/**
 * What a session needs from the listener that accepted it. `S` is the session
 * (session.ts), a parameter so that this file need not import it (session.ts imports
 * this one).
 */
export interface ListenerContext<S = unknown> {
  /** Current settings; swapped whole on reload. */
  readonly config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  /** Closes the listener's sessions that stay silent (TETHER_IDLE_TIMEOUT_MS). */
  readonly idle: IdleSweeper;
  onConnectFailed(session: S, upstream: Upstream): void;
  /** The session's upstream answered (tcp mode: TETHER_STICK pins its key there). */
  onSessionOpen?(session: S): void;
  onSessionEnd(session: S): void;
}

/**
 * A phase a tcp connection goes through before it is routed (its inbound PROXY header,
 * its first bytes read for a key). The session feeds it what the client sends until
 * the phase calls `session.endOpening()`.
 */
export interface OpeningPhase {
  /** Bytes the client sent (a copy the phase may keep). Returns whether to read on. */
  push(chunk: Buffer): boolean;
  /** The client's FIN came. */
  end(): void;
  /** The client closed (or the session was closed) before the phase ended. */
  abort(): void;
}
