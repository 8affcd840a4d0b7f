import type { ListenerConfig } from '../config/types.js';
import type { Logger } from 'pino';
import type { UpstreamPool } from '../routing/pool.js';
import type { PinStore } from '../store/types.js';
import type { Acceptor } from './acceptor.js';
import type { ConnectionLease } from './admission.js';
import type { ListenSocket } from '../net/reuse-port.js';
import { settle } from './access.js';
import type { HealthReporter, RoutedRecord } from './context.js';
import type { Outcome } from './types.js';

/** What every listener is made with; `R` is what its metrics callbacks receive. */
export interface ListenerOptions<R> {
  readonly config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  /** This listener's learned pins (http learn rules, TETHER_STICK). */
  readonly pins: PinStore;
  readonly logger: Logger;
  /** Child logger for access lines, or null when TETHER_ACCESS_LOG=off. */
  readonly accessLog: Logger | null;
  /** A unit was routed, before connecting (metrics). */
  readonly onSessionStart?: (routed: R) => void;
  /** A unit ended, routed or turned away (metrics). */
  readonly onSessionEnd?: (routed: R) => void;
  /** A worker's share of TETHER_MAX_CONNECTIONS (admission.ts); absent: the setting itself. */
  readonly lease?: ConnectionLease | null;
}

/** A listener's totals of ended units (connections, requests, upgrades, turned-away connections). */
export interface ListenerCounters {
  /** Ended units by outcome. */
  readonly outcomes: Record<Outcome, number>;
  fromClient: number;
  toClient: number;
}

/**
 * What tcp and http listeners share: the acceptor they listen with, and the totals
 * every ended unit is counted in.
 */
export abstract class ListenerBase {
  abstract config: ListenerConfig;
  readonly counters: ListenerCounters = {
    outcomes: { ok: 0, refused: 0, no_upstream: 0, connect_failed: 0, bad_request: 0, timeout: 0 },
    fromClient: 0,
    toClient: 0,
  };
  protected abstract readonly acceptor: Acceptor;

  get name(): string {
    return this.config.name;
  }

  /** The bound address (the real port when configured with port 0). */
  get address(): string {
    return this.acceptor.address;
  }

  get port(): number {
    return this.acceptor.port;
  }

  /** What accepted connections are served on: their TCP handles, or net.Socket where this Node gives none. */
  get sockets(): 'tcp handles' | 'net.Socket' {
    return this.acceptor.sockets;
  }

  /** Its listening socket: its own, shared with the other workers, or one of several on the port (SO_REUSEPORT). */
  get listenSocket(): ListenSocket {
    return this.acceptor.listenSocket;
  }

  /** Connections accepted so far. */
  get accepted(): number {
    return this.acceptor.accepted;
  }

  listen(): Promise<void> {
    return this.acceptor.listen();
  }

  /** An ended unit: into the listener's totals and its upstream's byte counts. */
  protected count(record: RoutedRecord): void {
    const counters = this.counters;
    counters.outcomes[record.outcome]++;
    counters.fromClient += record.fromClient;
    counters.toClient += record.toClient;
    settle(record);
  }
}
