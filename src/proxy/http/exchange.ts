import type { KeySourceName, RouteVia } from '../../routing/types.js';
import type { Upstream } from '../../routing/upstream.js';
import type { EndedRecord } from '../access.js';
import type { Outcome } from '../types.js';

/** What an exchange closes when its upstream is removed (its client connection). */
export interface ExchangeOwner {
  close(reason: string): void;
}

/**
 * One request and its response, as metrics, the access log and an upstream's open
 * units see it. The relaying is its connection's (connection.ts); this is the record.
 */
export class Exchange implements EndedRecord {
  readonly owner: ExchangeOwner;
  readonly startedAt = performance.now();
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly method: string;
  key: string | null = null;
  keySource: KeySourceName = 'none';
  via: RouteVia = 'hash';
  candidates: Upstream[] = [];
  attempt = 0;
  upstream: Upstream | null = null;
  /** Its upstream connection is open: `upstream` no longer changes (live byte counts wait for this). */
  connected = false;
  status = 0;
  outcome: Outcome = 'ok';
  reason = '';
  lastError = '';
  fromClient = 0;
  toClient = 0;

  constructor(owner: ExchangeOwner, clientAddress: string, clientPort: number, method: string) {
    this.owner = owner;
    this.clientAddress = clientAddress;
    this.clientPort = clientPort;
    this.method = method;
  }

  /** Close the connection it runs on (an upstream removed, a drain deadline). */
  close(reason: string): void {
    if (!this.reason) this.reason = reason;
    this.owner.close(reason);
  }
}
