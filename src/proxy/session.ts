import net from 'node:net';
import type { Upstream } from '../routing/upstream.js';
import type { KeySourceName, RouteVia } from '../routing/types.js';
import { sourceIpKey } from '../net/address.js';
import type { ListenerContext } from './context.js';
import { ProxyPrelude } from './proxy-protocol/prelude.js';
import type { ProxyAccept, ProxyHeader } from './proxy-protocol/header.js';
import { idleClock } from './idle.js';
import { copyRead, relayRead, relaySocketOptions } from './relay.js';
import type { Outcome } from './types.js';

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

const kSession = Symbol('tether.session');
type SessionSocket = net.Socket & { [kSession]?: Session };

/**
 * Called once an inbound PROXY header has been read (the session's client address
 * is already the header's). One function per listener, not per connection.
 */
export type ProxyHeaderReady = (session: Session, header: ProxyHeader) => void;

/**
 * One proxied connection: the client socket, the upstream it was routed to, and the
 * accounting for its access-log line. Socket events go to module-level handlers that
 * find their session through a symbol on the socket (as ws does), so a connection
 * costs no closures. Upstream sockets, and client sockets that tcp mode accepts, read
 * into relay buffers (relay.ts); a client socket handed over by node:http (an
 * upgrade) reads through 'data' events.
 */
export class Session {
  readonly ctx: ListenerContext;
  readonly client: net.Socket;
  /**
   * The client's address (the `source-ip` key form) and port: the socket's peer, or
   * what an accepted PROXY header says, set before the session is routed.
   */
  clientAddress: string;
  clientPort: number;
  readonly startedAt: number;
  upstreamSocket: net.Socket | null = null;
  upstream: Upstream | null = null;
  key: string | null = null;
  keySource: KeySourceName = 'none';
  via: RouteVia = 'hash';
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
  #prelude: ProxyPrelude<Session> | null = null;
  #proxyReady: ProxyHeaderReady | null = null;
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
  /** The client socket reads through `onClientRead` (set up by `relayAccepted`). */
  readonly #clientRelayed: boolean;

  /** `startedAt`: when the connection's routing began (an upgrade's: its request). */
  constructor(ctx: ListenerContext, client: net.Socket, clientAddress: string, clientPort: number, clientRelayed = false, startedAt = performance.now()) {
    this.ctx = ctx;
    this.client = client;
    this.#clientRelayed = clientRelayed;
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
   * Read an inbound PROXY header before routing. The client socket arrives paused
   * (pauseOnConnect); it flows only until the header is complete, then is paused
   * again with the bytes after the header kept in `pending`, so nothing is lost or
   * reordered while the upstream connects. Malformed: closed as `bad_request`;
   * incomplete after `timeoutMs` (a total, not an idle, limit: a header trickled a
   * byte at a time still ends): closed as `timeout`. Otherwise `ready` is called.
   */
  readProxyHeader(accept: ProxyAccept, timeoutMs: number, ready: ProxyHeaderReady): void {
    const client = this.client;
    this.#prelude = new ProxyPrelude(accept, timeoutMs, onHeadTimeout, this);
    this.#proxyReady = ready;
    if (!this.#clientRelayed) client.on('data', onHeaderData);
    // Stays until the upstream connects: once the socket has been read from, its FIN
    // is reported ('end') even while paused, and must not be lost.
    client.on('end', onEarlyEnd);
    client.resume();
  }

  get readingHeader(): boolean {
    return this.#prelude !== null && this.state === CONNECTING;
  }

  /** A chunk while reading the PROXY header (the parser may keep it: not a relay buffer). */
  onHeaderChunk(chunk: Buffer): void {
    const prelude = this.#prelude;
    if (prelude === null || this.state !== CONNECTING) return;
    const result = prelude.push(chunk);
    if (result === null) return;
    this.#endHeaderPhase();
    if (result.kind === 'failed') {
      this.close(result.reason, result.outcome ?? undefined);
      return;
    }
    const header = result.header;
    if (header.command === 'proxy') {
      this.clientAddress = sourceIpKey(header.sourceAddress);
      this.clientPort = header.sourcePort;
    }
    if (result.rest.length > 0) this.pending = result.rest;
    const ready = this.#proxyReady!;
    this.#proxyReady = null;
    ready(this, header);
  }

  /** The client's FIN before the upstream connected. */
  onEarlyEnd(): void {
    if (this.#prelude !== null) this.onHeaderIncomplete(false);
    else this.#clientEndedEarly = true;
  }

  /** The client's FIN, or the header deadline, came before a whole header. */
  onHeaderIncomplete(timedOut: boolean): void {
    if (this.#prelude === null) return;
    const end = this.#prelude.incomplete(timedOut);
    this.#endHeaderPhase();
    if (end.kind === 'failed') this.close(end.reason, end.outcome ?? undefined);
  }

  #endHeaderPhase(): void {
    const client = this.client;
    // Paused first: whatever else arrives waits in the socket's buffer, in order,
    // until the upstream connects.
    client.pause();
    client.removeListener('data', onHeaderData);
    this.#prelude?.stop();
    this.#prelude = null;
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
    if (this.#prelude !== null) this.#endHeaderPhase();
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
      const socket = net.connect({
        host: upstream.host,
        port: upstream.port,
        noDelay: true,
        allowHalfOpen: true,
        ...relaySocketOptions(onUpstreamRead),
      }) as SessionSocket;
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
   * protocols (http mode: the upstream answered 101 to an upgrade request). Its
   * socket reads through 'data' events, as node:http's client hands it over. The
   * 101 head (and whatever the upstream sent after it) goes to the client first;
   * `pending` (the client's bytes after its upgrade request) to the upstream.
   */
  adopt(upstream: Upstream, socket: net.Socket, toClient: Buffer): void {
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
    socket.on('data', onUpstreamData);
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
    if (!this.#clientRelayed) {
      client.on('data', onClientData);
      // node:http may have left its own timer on the socket it handed over: the
      // listener's sweep bounds silence now, so stop that timer's refresh per read.
      client.setTimeout(0);
    }
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
        // Counted when relayed, as onClientData counts what it relays.
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
    client.resume();
  }

  /**
   * `bytes` more read from the client (either read path): counted and stamped.
   * Returns the upstream to write them to, or null when it has closed: data it can
   * never read means the client must be told, so the session is closed.
   */
  upstreamFor(bytes: number): net.Socket | null {
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
    if (this.#prelude !== null) {
      // Reset while we read its PROXY header.
      if (this.#prelude.started && !this.reason) {
        this.reason = 'client closed during PROXY header';
        this.outcome = 'bad_request';
      }
      this.#endHeaderPhase();
    }
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

function sessionOf(socket: net.Socket): Session {
  return (socket as SessionSocket)[kSession]!;
}

function onHeaderData(this: net.Socket, chunk: Buffer): void {
  sessionOf(this).onHeaderChunk(chunk);
}

function onEarlyEnd(this: net.Socket): void {
  sessionOf(this).onEarlyEnd();
}

function onHeadTimeout(session: Session): void {
  session.onHeaderIncomplete(true);
}

/** The read callback of a client socket made by `adoptAccepted`. */
export function onClientRead(this: net.Socket, nread: number, buffer: Buffer): boolean {
  const s = sessionOf(this);
  if (s.state === OPEN) {
    const upstream = s.upstreamFor(nread);
    return upstream !== null && relayRead(upstream, nread, buffer);
  }
  if (!s.readingHeader) return false;
  s.onHeaderChunk(copyRead(nread, buffer));
  // A complete header paused the socket (bytes after it wait in the kernel).
  return s.readingHeader;
}

function onUpstreamRead(this: net.Socket, nread: number, buffer: Buffer): boolean {
  const s = sessionOf(this);
  s.toClient += nread;
  s.activeAt = idleClock.now;
  const client = s.client;
  if (client.destroyed) return false;
  return relayRead(client, nread, buffer);
}

/** An upstream socket handed over by node:http's client (an upgrade's) reads through 'data' events. */
function onUpstreamData(this: net.Socket, chunk: Buffer): void {
  const s = sessionOf(this);
  s.toClient += chunk.length;
  s.activeAt = idleClock.now;
  const client = s.client;
  if (client.destroyed) return;
  if (!client.write(chunk)) this.pause();
}

/** A client socket from node:http (an upgrade) reads through 'data' events. */
function onClientData(this: net.Socket, chunk: Buffer): void {
  const upstream = sessionOf(this).upstreamFor(chunk.length);
  if (upstream !== null && !upstream.write(chunk)) this.pause();
}

function onClientEnd(this: net.Socket): void {
  const s = sessionOf(this);
  if (!s.reason) s.reason = 'client closed';
  const upstream = s.upstreamSocket;
  if (upstream) passFin(upstream);
}

function onClientDrain(this: net.Socket): void {
  const upstream = sessionOf(this).upstreamSocket;
  if (upstream && !upstream.destroyed) upstream.resume();
}

function onClientError(this: net.Socket, err: NodeJS.ErrnoException): void {
  const s = sessionOf(this);
  if (!s.reason) s.reason = `client error: ${err.code ?? err.message}`;
}

function onClientClose(this: net.Socket): void {
  sessionOf(this).onClientGone();
}

function onUpstreamConnect(this: net.Socket): void {
  const s = sessionOf(this);
  if (s.upstreamSocket !== this || s.state !== CONNECTING) return;
  s.onConnected();
}

function onUpstreamEnd(this: net.Socket): void {
  const s = sessionOf(this);
  if (!s.reason) s.reason = 'upstream closed';
  passFin(s.client);
}

/**
 * Send a FIN on `socket` (its peer's FIN went the other way). When that peer has
 * already sent its own FIN and nothing is left to write, closing the socket sends the
 * same FIN (nothing unread, so no reset) and saves a shutdown call per connection.
 */
function passFin(socket: net.Socket): void {
  if (socket.destroyed || socket.writableEnded) return;
  if (socket.readableEnded && socket.writableLength === 0) socket.destroy();
  else socket.end();
}

function onUpstreamDrain(this: net.Socket): void {
  const client = sessionOf(this).client;
  if (!client.destroyed) client.resume();
}

function onConnectTimeout(session: Session): void {
  session.onConnectTimeout();
}

function onUpstreamError(this: net.Socket, err: NodeJS.ErrnoException): void {
  const s = sessionOf(this);
  if (s.upstreamSocket !== this) return;
  s.lastError = err.code ?? err.message;
}

function onUpstreamClose(this: net.Socket, hadError: boolean): void {
  const s = sessionOf(this);
  if (s.upstreamSocket !== this) return;
  if (s.state === CONNECTING) {
    s.onConnectFailed();
    return;
  }
  s.onUpstreamGone(hadError);
}
