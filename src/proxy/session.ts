import type { Upstream } from '../routing/upstream.js';
import type { KeySourceName, RouteVia } from '../routing/types.js';
import type { ListenerContext, OpeningPhase } from './context.js';
import { idleClock } from './idle.js';
import { connectUpstream } from './upstream-connect.js';
import type { RelaySocket } from './relay.js';
import {
  CLOSED,
  CONNECTING,
  OPEN,
  kSession,
  onClientClose,
  onClientDrain,
  onClientEnd,
  onClientError,
  onConnectTimeout,
  onEarlyEnd,
  onUpstreamClose,
  onUpstreamConnect,
  onUpstreamDrain,
  onUpstreamEnd,
  onUpstreamError,
  onUpstreamRead,
  passFin,
  type SessionEvents,
  type SessionSocket,
} from './session-events.js';
import type { Outcome } from './types.js';

export { onClientRead } from './session-events.js';

/**
 * One proxied connection: the client socket, the upstream it was routed to, and the
 * accounting for its access-log line. Socket events go to module-level handlers that
 * find their session through a symbol on the socket (as ws does), so a connection
 * costs no closures. Upstream sockets, and client sockets that tcp mode accepts, read
 * into relay buffers (relay.ts); a client socket handed over by node:http (an
 * upgrade) reads through 'data' events.
 */
export class Session implements SessionEvents {
  readonly ctx: ListenerContext;
  readonly client: RelaySocket;
  /**
   * The client's address (the `source-ip` key form) and port: the socket's peer, or
   * what an accepted PROXY header says, set before the session is routed.
   */
  clientAddress: string;
  clientPort: number;
  readonly startedAt: number;
  upstreamSocket: RelaySocket | null = null;
  upstream: Upstream | null = null;
  key: string | null = null;
  keySource: KeySourceName = 'none';
  via: RouteVia = 'hash';
  /** Its key has a learned pin to its upstream (TETHER_STICK): /rebalance leaves it. */
  pinned = false;
  candidates: Upstream[] = [];
  attempt = 0;
  state = CONNECTING;
  fromClient = 0;
  toClient = 0;
  outcome: Outcome = 'ok';
  /** `idleClock.now` when a byte last moved either way (the listener's IdleSweeper). */
  activeAt = 0;
  reason = '';
  lastError = '';
  /** Bytes to write to the upstream before client data (e.g. a PROXY header). */
  preamble: Buffer | null = null;
  /**
   * Client bytes read before routing (those that followed an inbound PROXY header in
   * its last chunk): written to the upstream after `preamble`, before anything else
   * the client sends.
   */
  pending: Buffer | null = null;
  /** What reads the client's bytes before routing (tcp mode), if anything. */
  #opening: OpeningPhase | null = null;
  #earlyEndWatched = false;
  /**
   * The current connect attempt's deadline. A timer of our own rather than
   * socket.setTimeout, whose Timeout the socket keeps after it is cleared.
   */
  #connectTimer: NodeJS.Timeout | null = null;
  /** The client's FIN came while the upstream was connecting (after a PROXY header). */
  #clientEndedEarly = false;
  #clientClosed = false;
  #upstreamClosed = true;
  #finished = false;

  /** `startedAt`: when the connection's routing began (an upgrade's: its request). */
  /** `client` reads through `onClientRead` (given by the Acceptor, or by a read callback that passes its reads on). */
  constructor(ctx: ListenerContext, client: RelaySocket, clientAddress: string, clientPort: number, startedAt = performance.now()) {
    this.ctx = ctx;
    this.client = client;
    this.clientAddress = clientAddress;
    this.clientPort = clientPort;
    this.startedAt = startedAt;
    (client as SessionSocket)[kSession] = this;
    client.on('error', onClientError);
    client.on('close', onClientClose);
  }

  get open(): boolean {
    return this.state === OPEN;
  }

  /**
   * Hand what the client sends to `phase` until it calls `endOpening()` (the client
   * socket arrives paused, pauseOnConnect, and reads through `onClientRead`).
   */
  beginOpening(phase: OpeningPhase): void {
    this.#opening = phase;
    if (!this.#earlyEndWatched) {
      // Stays until the upstream connects: once the socket has been read from, its
      // FIN is reported ('end') even while paused, and must not be lost.
      this.#earlyEndWatched = true;
      this.client.on('end', onEarlyEnd);
    }
    this.client.resume();
  }

  /**
   * The opening phase is over. Paused first: whatever else arrives waits in the
   * socket's buffer, in order, until the upstream connects.
   */
  endOpening(): void {
    this.client.pause();
    this.#opening = null;
  }

  get opening(): OpeningPhase | null {
    return this.state === CONNECTING ? this.#opening : null;
  }

  /** The client's FIN before the upstream connected. */
  onEarlyEnd(): void {
    this.#clientEndedEarly = true;
    this.#opening?.end();
  }

  /** Start connecting to candidates in order (the client is paused until one answers). */
  connect(): void {
    // The client went away while the route was being decided (a pin lookup waits on
    // the store): nothing to connect for, and a connection made now would never close.
    if (this.state === CLOSED) return;
    this.#connectNext();
  }

  /** Close both sides now (idle timeout, drain deadline, rebalance, shutdown). */
  close(reason: string, outcome?: Outcome): void {
    if (this.state === CLOSED) return;
    if (!this.reason) this.reason = reason;
    if (outcome) this.outcome = outcome;
    this.state = CLOSED;
    this.#clearConnectTimer();
    this.#abortOpening();
    this.upstreamSocket?.destroy();
    this.client.destroy();
  }

  #connectNext(): void {
    const ctx = this.ctx;
    while (this.attempt < this.candidates.length) {
      const upstream = this.candidates[this.attempt++]!;
      // The table may have changed since routing: skip upstreams gone down meanwhile.
      if (!upstream.healthy || upstream.removed) continue;
      this.upstream = upstream;
      ctx.pool.acquire(upstream);
      upstream.sessions.add(this);
      const socket = connectUpstream(upstream, onUpstreamRead, 'relay') as SessionSocket;
      socket[kSession] = this;
      this.upstreamSocket = socket;
      this.#upstreamClosed = false;
      this.#connectTimer = setTimeout(onConnectTimeout, ctx.config.connectTimeoutMs, this);
      socket.on('connect', onUpstreamConnect);
      socket.on('error', onUpstreamError);
      socket.on('close', onUpstreamClose);
      return;
    }
    this.upstream = null;
    this.upstreamSocket = null;
    const tried = this.candidates.length > 0;
    this.close(tried ? `connect failed: ${this.lastError}` : 'no upstream', tried ? 'connect_failed' : 'no_upstream');
  }

  /**
   * Take over an upstream connection that is already open and has agreed to switch
   * protocols (http mode: the upstream answered 101 to an upgrade request). Its reads
   * come through a read callback that passes them to `onUpstreamRead` once this
   * session is on the socket (upstream-sockets.ts). The 101 head (and whatever the upstream sent after it) goes to the client first;
   * `pending` (the client's bytes after its upgrade request) to the upstream.
   */
  adopt(upstream: Upstream, socket: RelaySocket, toClient: Buffer): void {
    if (this.state !== CONNECTING) {
      socket.destroy();
      return;
    }
    this.upstream = upstream;
    this.ctx.pool.acquire(upstream);
    upstream.sessions.add(this);
    (socket as SessionSocket)[kSession] = this;
    this.upstreamSocket = socket;
    this.#upstreamClosed = false;
    socket.on('error', onUpstreamError);
    socket.on('close', onUpstreamClose);
    this.toClient += toClient.length;
    this.client.write(toClient);
    this.onConnected();
    socket.resume();
  }

  /** The upstream answered: start relaying both ways. */
  onConnected(): void {
    const client = this.client;
    const upstream = this.upstreamSocket!;
    this.state = OPEN;
    this.#clearConnectTimer();
    upstream.on('end', onUpstreamEnd);
    upstream.on('drain', onUpstreamDrain);
    client.removeListener('end', onEarlyEnd);
    client.on('end', onClientEnd);
    client.on('drain', onClientDrain);
    // Every byte relayed either way is read by one of the two sockets, and each read
    // stamps activeAt: the sweeper sees silence in both directions.
    this.ctx.idle.track(this);
    if (this.preamble !== null || this.pending !== null) {
      // One writev: the PROXY header and the client's first bytes leave together.
      upstream.cork();
      if (this.preamble !== null) upstream.write(this.preamble);
      if (this.pending !== null) {
        // Counted when relayed, as onClientRead counts what it relays.
        this.fromClient += this.pending.length;
        upstream.write(this.pending);
        this.pending = null;
      }
      upstream.uncork();
    }
    // A FIN read before now (while the route was decided, in http mode) was reported
    // to no one: pass it on, or the upstream waits for more for ever.
    if (this.#clientEndedEarly || client.readableEnded) onClientEnd.call(client);
    this.ctx.health.reportSuccess(this.upstream!.name);
    this.ctx.onSessionOpen?.(this);
    client.resume();
  }

  /**
   * `bytes` more read from the client (either read path): counted and stamped.
   * Returns the upstream to write them to, or null when it has closed: data it can
   * never read means the client must be told, so the session is closed.
   */
  upstreamFor(bytes: number): RelaySocket | null {
    this.fromClient += bytes;
    this.activeAt = idleClock.now;
    const upstream = this.upstreamSocket!;
    if (upstream.writableEnded || upstream.destroyed) {
      this.close('upstream closed');
      return null;
    }
    return upstream;
  }

  /** The connect attempt's deadline passed: fail it (its 'close' tries the next). */
  onConnectTimeout(): void {
    this.#connectTimer = null;
    const socket = this.upstreamSocket;
    if (this.state !== CONNECTING || socket === null) return;
    this.lastError = 'connect timeout';
    socket.destroy();
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== null) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = null;
    }
  }

  /** The current upstream attempt failed before any byte was relayed. */
  onConnectFailed(): void {
    this.#clearConnectTimer();
    const upstream = this.upstream!;
    this.#detach(upstream);
    this.upstream = null;
    this.ctx.health.reportFailure(upstream.name, this.lastError || 'connect failed');
    this.ctx.onConnectFailed(this, upstream);
    if (this.#clientClosed) {
      this.#finish();
      return;
    }
    this.#connectNext();
  }

  onClientGone(): void {
    this.#clientClosed = true;
    this.#abortOpening();
    if (!this.reason) this.reason = 'client closed';
    // A client that hangs up while we connect is not the upstream's failure.
    if (this.state === CONNECTING) this.state = CLOSED;
    const upstream = this.upstreamSocket;
    if (upstream && !this.#upstreamClosed) {
      // The client is gone both ways: nothing the upstream sends can be delivered.
      if (!(upstream.readableEnded && upstream.writableEnded)) upstream.destroy();
      return;
    }
    this.#finish();
  }

  onUpstreamGone(hadError: boolean): void {
    this.#upstreamClosed = true;
    const client = this.client;
    if (!this.#clientClosed) {
      if (hadError || !this.open) {
        if (!this.reason) this.reason = this.lastError ? `upstream error: ${this.lastError}` : 'upstream closed';
        // Pass an abort on as an abort (RST), as HAProxy does, so the client cannot
        // take a truncated stream for a complete one.
        if (!client.destroyed) client.resetAndDestroy();
      } else {
        passFin(client);
      }
      // With the upstream gone, the client's FIN or close finishes the session.
      return;
    }
    this.#finish();
  }

  #abortOpening(): void {
    const phase = this.#opening;
    if (phase === null) return;
    this.#opening = null;
    phase.abort();
  }

  #detach(upstream: Upstream): void {
    this.ctx.pool.release(upstream);
    upstream.sessions.delete(this);
    this.#upstreamClosed = true;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.state = CLOSED;
    if (this.upstream) this.#detach(this.upstream);
    this.ctx.onSessionEnd(this);
  }
}
