import net from 'node:net';
import type { Upstream } from '../pool/upstream.js';
import type { RouteVia } from '../pool/pool.js';
import type { ListenerContext } from './context.js';

/** Why a connection ended, as counted in metrics (`outcome`). */
export type Outcome = 'ok' | 'refused' | 'no_upstream' | 'connect_failed' | 'bad_request' | 'timeout';

export type KeySourceName = 'source-ip' | 'header' | 'cookie' | 'query' | 'path' | 'learned' | 'none';

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

const kSession = Symbol('tether.session');
type SessionSocket = net.Socket & { [kSession]?: Session };

/**
 * One proxied connection: the client socket, the upstream it was routed to, and the
 * accounting for its access-log line. Socket events go to module-level handlers that
 * find their session through a symbol on the socket (as ws does), so a connection
 * costs no closures.
 */
export class Session {
  readonly ctx: ListenerContext;
  readonly client: net.Socket;
  readonly clientAddress: string;
  readonly clientPort: number;
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
  reason = '';
  lastError = '';
  /** Bytes to write to the upstream before client data (e.g. a PROXY header). */
  preamble: Buffer | null = null;
  #clientClosed = false;
  #upstreamClosed = true;
  #finished = false;

  constructor(ctx: ListenerContext, client: net.Socket, clientAddress: string, clientPort: number) {
    this.ctx = ctx;
    this.client = client;
    this.clientAddress = clientAddress;
    this.clientPort = clientPort;
    this.startedAt = performance.now();
    (client as SessionSocket)[kSession] = this;
    client.on('error', onClientError);
    client.on('close', onClientClose);
  }

  get open(): boolean {
    return this.state === OPEN;
  }

  /** Start connecting to candidates in order (the client is paused until one answers). */
  connect(): void {
    this.#connectNext();
  }

  /** Close both sides now (idle timeout, drain deadline, rebalance, shutdown). */
  close(reason: string, outcome?: Outcome): void {
    if (this.state === CLOSED) return;
    if (!this.reason) this.reason = reason;
    if (outcome) this.outcome = outcome;
    this.state = CLOSED;
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
      const socket = net.connect({ host: upstream.host, port: upstream.port, noDelay: true, allowHalfOpen: true }) as SessionSocket;
      socket[kSession] = this;
      this.upstreamSocket = socket;
      this.#upstreamClosed = false;
      socket.setTimeout(ctx.config.connectTimeoutMs);
      socket.once('connect', onUpstreamConnect);
      socket.on('timeout', onUpstreamTimeout);
      socket.on('error', onUpstreamError);
      socket.on('close', onUpstreamClose);
      return;
    }
    this.upstream = null;
    this.upstreamSocket = null;
    const tried = this.candidates.length > 0;
    this.close(tried ? `connect failed: ${this.lastError}` : 'no upstream', tried ? 'connect_failed' : 'no_upstream');
  }

  /** The upstream answered: start relaying both ways. */
  onConnected(): void {
    const client = this.client;
    const upstream = this.upstreamSocket!;
    this.state = OPEN;
    upstream.setTimeout(0);
    upstream.removeListener('timeout', onUpstreamTimeout);
    upstream.on('data', onUpstreamData);
    upstream.on('end', onUpstreamEnd);
    upstream.on('drain', onUpstreamDrain);
    client.on('data', onClientData);
    client.on('end', onClientEnd);
    client.on('drain', onClientDrain);
    const idle = this.ctx.config.idleTimeoutMs;
    if (idle > 0) {
      // A socket's timer is refreshed by its reads and its writes, so the client
      // socket's timer measures silence in both directions.
      client.setTimeout(idle);
      client.on('timeout', onClientTimeout);
    }
    if (this.preamble) upstream.write(this.preamble);
    this.ctx.health.reportSuccess(this.upstream!.name);
    client.resume();
  }

  /** The current upstream attempt failed before any byte was relayed. */
  onConnectFailed(): void {
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
      } else if (!client.writableEnded) {
        client.end();
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

function onClientData(this: net.Socket, chunk: Buffer): void {
  const s = sessionOf(this);
  s.fromClient += chunk.length;
  const upstream = s.upstreamSocket!;
  if (upstream.writableEnded || upstream.destroyed) {
    // The upstream closed: data it can never read means the client must be told.
    s.close('upstream closed');
    return;
  }
  if (!upstream.write(chunk)) this.pause();
}

function onClientEnd(this: net.Socket): void {
  const s = sessionOf(this);
  if (!s.reason) s.reason = 'client closed';
  const upstream = s.upstreamSocket;
  if (upstream && !upstream.destroyed && !upstream.writableEnded) upstream.end();
}

function onClientDrain(this: net.Socket): void {
  const upstream = sessionOf(this).upstreamSocket;
  if (upstream && !upstream.destroyed) upstream.resume();
}

function onClientTimeout(this: net.Socket): void {
  sessionOf(this).close('idle timeout', 'timeout');
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

function onUpstreamData(this: net.Socket, chunk: Buffer): void {
  const s = sessionOf(this);
  s.toClient += chunk.length;
  if (!s.client.write(chunk)) this.pause();
}

function onUpstreamEnd(this: net.Socket): void {
  const s = sessionOf(this);
  if (!s.reason) s.reason = 'upstream closed';
  const client = s.client;
  if (!client.destroyed && !client.writableEnded) client.end();
}

function onUpstreamDrain(this: net.Socket): void {
  const client = sessionOf(this).client;
  if (!client.destroyed) client.resume();
}

function onUpstreamTimeout(this: net.Socket): void {
  const s = sessionOf(this);
  if (s.upstreamSocket !== this) return;
  s.lastError = 'connect timeout';
  this.destroy();
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
