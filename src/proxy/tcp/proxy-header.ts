import { sourceIpKey } from '../../net/address.js';
import type { OpeningPhase } from '../context.js';
import type { ProxyAccept, ProxyHeader } from '../proxy-protocol/header.js';
import { ProxyPrelude } from '../proxy-protocol/prelude.js';
import type { Session } from '../session.js';

/**
 * Called once an inbound PROXY header has been read (the session's client address
 * is already the header's). One function per listener, not per connection.
 */
export type ProxyHeaderReady = (session: Session, header: ProxyHeader) => void;

/**
 * Read an inbound PROXY header before routing. The client flows only until the
 * header is complete, then is paused again with the bytes after the header kept in
 * `session.pending`, so nothing is lost or reordered. Malformed: closed as
 * `bad_request`; incomplete after `timeoutMs` (a total, not an idle, limit: a header
 * trickled a byte at a time still ends): closed as `timeout`. Otherwise `ready`.
 */
export function readProxyHeader(session: Session, accept: ProxyAccept, timeoutMs: number, ready: ProxyHeaderReady): void {
  session.beginOpening(new ProxyHeaderPhase(session, accept, timeoutMs, ready));
}

class ProxyHeaderPhase implements OpeningPhase {
  readonly #session: Session;
  readonly #prelude: ProxyPrelude<ProxyHeaderPhase>;
  readonly #ready: ProxyHeaderReady;

  constructor(session: Session, accept: ProxyAccept, timeoutMs: number, ready: ProxyHeaderReady) {
    this.#session = session;
    this.#ready = ready;
    this.#prelude = new ProxyPrelude(accept, timeoutMs, onHeaderTimeout, this);
  }

  push(chunk: Buffer): boolean {
    const result = this.#prelude.push(chunk);
    if (result === null) return true;
    const session = this.#session;
    session.endOpening();
    if (result.kind === 'failed') {
      session.close(result.reason, result.outcome ?? undefined);
      return false;
    }
    const header = result.header;
    if (header.command === 'proxy') {
      session.clientAddress = sourceIpKey(header.sourceAddress);
      session.clientPort = header.sourcePort;
    }
    if (result.rest.length > 0) session.pending = result.rest;
    this.#ready(session, header);
    // Read on when the next phase (the first bytes) has begun; else paused until routed.
    return session.opening !== null;
  }

  /** The client's FIN came before a whole header. */
  end(): void {
    this.incomplete(false);
  }

  /** The client's FIN, or the deadline, came before a whole header. */
  incomplete(timedOut: boolean): void {
    const session = this.#session;
    if (session.opening !== this) return;
    const end = this.#prelude.incomplete(timedOut);
    session.endOpening();
    if (end.kind === 'failed') session.close(end.reason, end.outcome ?? undefined);
  }

  abort(): void {
    this.#prelude.stop();
    const session = this.#session;
    // Reset while we read its PROXY header.
    if (this.#prelude.started && !session.reason) {
      session.reason = 'client closed during PROXY header';
      session.outcome = 'bad_request';
    }
  }
}

function onHeaderTimeout(phase: ProxyHeaderPhase): void {
  phase.incomplete(true);
}
