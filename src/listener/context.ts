import type { ListenerConfig } from '../config/types.js';
import type { UpstreamPool } from '../pool/pool.js';
import type { Upstream } from '../pool/upstream.js';
import type { Session } from './session.js';

/** Passive health evidence from the data plane. */
export interface HealthReporter {
  reportFailure(name: string, reason: string): void;
  reportSuccess(name: string): void;
}

/** What a session needs from the listener that accepted it. */
export interface ListenerContext {
  /** Current settings; swapped whole on reload. */
  readonly config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  onConnectFailed(session: Session, upstream: Upstream): void;
  onSessionEnd(session: Session): void;
}
