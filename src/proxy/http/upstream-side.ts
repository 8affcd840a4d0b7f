import type { Upstream } from '../../routing/upstream.js';
import { CONNECTION_CLOSE, CONNECTION_KEEP_ALIVE, forwardHead } from './forward-head.js';
import { Body, FAILED, h1ErrorName, NEED_MORE } from './h1/index.js';
import { MessageBody } from './h1/message-body.js';
import { ResponseHeadReader, type ResponseHeadUser } from './response-head.js';
import type { ClientSide, UpstreamSideHost } from './types.js';
import { connectUpstream, detachUpstream, reusable, setUser, type UpstreamSocket, type UpstreamUser } from './upstream-sockets.js';

// Response states.
/** Reading the head, or storing the pins it teaches before it goes on (response-head.ts). */
const RES_HEAD = 0;
const RES_BODY = 1;
const RES_DONE = 2;

/** Methods that carry no body and may be replayed on a fresh connection. */
const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'TRACE']);

const EMPTY = Buffer.alloc(0);

/**
 * The upstream half of a client connection in http mode: for each request, an
 * upstream connection (kept alive, or new), the head written, the response head
 * read for framing and learning (response-head.ts), the response relayed as it
 * came. One per client connection, reused request after request.
 */
export class UpstreamSide implements UpstreamUser, ResponseHeadUser {
  readonly #client: ClientSide;
  readonly #host: UpstreamSideHost;
  #socket: UpstreamSocket | null = null;
  #connected = false;
  #reused = false;
  #replayed = false;
  #connectTimer: NodeJS.Timeout | null = null;
  /** The head written upstream (kept for a replay). */
  #head: Buffer | null = null;
  readonly #responseHead: ResponseHeadReader;
  readonly #body = new MessageBody();
  #state = RES_DONE;
  /** A byte of the response has gone to the client. */
  #started = false;
  /** A byte of the response has come. */
  #seen = false;
  /** The client connection closes after this response. */
  #closeAfter = false;
  /** The upstream connection cannot carry another request. */
  #spoilt = false;
  /** Upstream connections private to this client (TETHER_PROXY_PROTOCOL), idle between its requests. */
  #private: Map<Upstream, UpstreamSocket> | null = null;

  constructor(client: ClientSide, host: UpstreamSideHost) {
    this.#client = client;
    this.#host = host;
    this.#responseHead = new ResponseHeadReader(client, host, this);
  }

  /** The client connection closes once this response is out. */
  get closeAfter(): boolean {
    return this.#closeAfter;
  }

  /** Part of the response has reached the client: too late for an answer of tether's own. */
  get responseStarted(): boolean {
    return this.#started;
  }

  /** The response body is being relayed (client 'drain' resumes the upstream). */
  get relayingBody(): boolean {
    return this.#state === RES_BODY;
  }

  /** The upstream cannot take more now: its 'drain' will say when. */
  get needsDrain(): boolean {
    return this.#socket !== null && this.#socket.writableNeedDrain;
  }

  // ------------------------------------------------------------------ the request

  /** Send the request (its head forwarded as `head`) to the first candidate still up, or answer 503. */
  send(head: Buffer): void {
    this.#head = head;
    this.#tryNext();
  }

  /** Request body bytes on; false: wait for the upstream's drain. */
  write(bytes: Buffer): boolean {
    return this.#socket!.write(bytes);
  }

  /** The request body broke off (a malformed chunk): the upstream has part of a body it must not wait on. */
  spoil(): void {
    this.#spoilt = true;
  }

  #tryNext(): void {
    const exchange = this.#client.exchange!;
    while (exchange.attempt < exchange.candidates.length) {
      const upstream = exchange.candidates[exchange.attempt++]!;
      // Routing may predate a health change: skip upstreams gone down meanwhile.
      if (!upstream.healthy || upstream.removed) continue;
      this.#use(upstream, false);
      return;
    }
    const tried = exchange.candidates.length > 0;
    this.#client.answer(
      503,
      tried ? 'no upstream answered' : 'no upstream available',
      tried ? 'connect_failed' : 'no_upstream',
      tried ? `connect failed: ${exchange.lastError}` : 'no upstream',
    );
  }

  /** Send the request to `upstream`, on a kept-alive connection unless `fresh` (or an upgrade). */
  #use(upstream: Upstream, fresh: boolean): void {
    const exchange = this.#client.exchange!;
    if (exchange.upstream !== upstream) {
      if (exchange.upstream !== null) this.#host.release(exchange, exchange.upstream);
      exchange.upstream = upstream;
      this.#host.acquire(exchange, upstream);
    }
    if (!fresh && !this.#client.upgrade) {
      const socket = this.#takeIdle(upstream);
      if (socket !== null) {
        this.#socket = socket;
        this.#connected = true;
        exchange.connected = true;
        this.#reused = true;
        this.#writeHead();
        return;
      }
    }
    this.#reused = false;
    this.#connected = false;
    this.#socket = connectUpstream(upstream, this, this.#client.proxyHeader);
    this.#connectTimer = setTimeout(onConnectTimeout, this.#host.config.connectTimeoutMs, this);
  }

  #takeIdle(upstream: Upstream): UpstreamSocket | null {
    if (this.#client.proxyHeader === null) return this.#host.upstreamSockets.take(upstream, this);
    const socket = this.#private?.get(upstream);
    if (socket === undefined) return null;
    this.#private!.delete(upstream);
    if (!reusable(socket)) return null;
    setUser(socket, this);
    return socket;
  }

  onUpstreamConnect(): void {
    this.#clearConnectTimer();
    this.#connected = true;
    const exchange = this.#client.exchange!;
    exchange.connected = true;
    this.#host.connectSucceeded(exchange.upstream!);
    this.#writeHead();
  }

  connectTimedOut(): void {
    this.#connectTimer = null;
    const socket = this.#socket;
    if (socket === null || this.#connected) return;
    const err: NodeJS.ErrnoException = new Error('connect timeout');
    err.code = 'connect timeout';
    socket.destroy(err);
  }

  /** The upstream connection is open: the head, then what the client has sent of the body, in one write. */
  #writeHead(): void {
    const socket = this.#socket!;
    this.#state = RES_HEAD;
    this.#started = false;
    this.#seen = false;
    this.#spoilt = false;
    this.#responseHead.start(this.#client.exchange!.method);
    const corked = !this.#client.requestDone;
    if (corked) socket.cork();
    socket.write(this.#head!);
    this.#client.requestSent();
    if (corked) socket.uncork();
  }

  onUpstreamDrain(): void {
    this.#client.upstreamDrained();
  }

  /** The client took what it was sent: read the response on. */
  clientDrained(): void {
    if (this.#state === RES_BODY) this.#socket?.resume();
  }

  // ------------------------------------------------------------------ the response

  onUpstreamData(chunk: Buffer): void {
    this.#client.touch();
    this.#seen = true;
    switch (this.#state) {
      case RES_HEAD:
        this.#responseHead.read(chunk);
        return;
      case RES_BODY:
        this.#relayBody(chunk, 0, 0);
        return;
      default:
        // Bytes after the response: this connection's framing cannot be trusted again.
        this.#spoilt = true;
    }
  }

  /** Stop reading the upstream: its bytes wait while a head's pins are stored (response-head.ts). */
  pauseUpstream(): void {
    this.#socket!.pause();
  }

  /** The head's pins are stored: it goes on with what came meanwhile, and the upstream is read again. */
  afterLearning(head: Buffer, rest: Buffer | null): void {
    const socket = this.#socket!;
    this.afterHead(head, rest ?? EMPTY, 0);
    if (this.#state === RES_BODY && socket === this.#socket) {
      if (socket.destroyed) this.onUpstreamClose();
      else socket.resume();
    }
  }

  /** The final response head, pins stored: on to the client, then its body from `buf[at]`. */
  afterHead(head: Buffer, buf: Buffer, at: number): void {
    const res = this.#responseHead.response;
    if (res.bodyKind === Body.Tunnel) {
      const socket = this.#socket!;
      this.#socket = null;
      detachUpstream(socket);
      this.#client.tunnel(head, buf, at, socket);
      return;
    }
    const req = this.#client.request;
    const requestDone = this.#client.requestDone;
    // Another request can follow only when both sides said so and the end of this
    // response is known; and not after an early answer while the body still comes.
    this.#closeAfter = !req.keepAlive || this.#host.closing || res.bodyKind === Body.UntilClose || !requestDone;
    const add = this.#closeAfter ? CONNECTION_CLOSE : req.versionMinor === 0 ? CONNECTION_KEEP_ALIVE : '';
    const out = forwardHead(res, head, false, add);
    const exchange = this.#client.exchange!;
    exchange.toClient += out.length;
    this.#started = true;
    this.#state = RES_BODY;
    this.#body.start(res.bodyKind, res.contentLength);
    const client = this.#client.socket;
    if (res.bodyKind === Body.None || at === buf.length) {
      if (!client.write(out)) this.#socket!.pause();
      if (res.bodyKind === Body.None) this.#done(buf, at);
      return;
    }
    // The head and the body that came with it leave in one write: one slice when the
    // head goes on as it came, right before the body in the same read.
    if (out === head && at >= head.length && head.buffer === buf.buffer && head.byteOffset + head.length === buf.byteOffset + at) {
      exchange.toClient -= head.length;
      this.#relayBody(buf, at, at - head.length);
      return;
    }
    client.cork();
    if (!client.write(out)) this.#socket!.pause();
    this.#relayBody(buf, at, at);
    client.uncork();
  }

  /** Relay response body bytes from `at` (writing from `writeFrom`, where a head before them goes along). */
  #relayBody(buf: Buffer, at: number, writeFrom: number): void {
    const end = this.#body.end(buf, at);
    if (end === FAILED) {
      this.broke(`malformed response body: ${h1ErrorName(this.#body.error)}`);
      return;
    }
    const stop = end === NEED_MORE ? buf.length : end;
    if (stop > writeFrom) {
      this.#client.exchange!.toClient += stop - writeFrom;
      if (!this.#client.socket.write(writeFrom === 0 && stop === buf.length ? buf : buf.subarray(writeFrom, stop))) this.#socket!.pause();
    }
    if (end !== NEED_MORE) this.#done(buf, end);
  }

  #done(buf: Buffer, end: number): void {
    this.#state = RES_DONE;
    if (end < buf.length) this.#spoilt = true;
    // An early answer ends the exchange too: the connection closes after it.
    if (this.#client.requestDone || this.#closeAfter) this.#client.responseDone();
  }

  // ------------------------------------------------------------------ the end of an exchange

  /** The exchange is over: its upstream connection kept for the next request, or closed. */
  finish(upstream: Upstream): void {
    const socket = this.#socket;
    this.#socket = null;
    if (socket === null) return;
    const keep = !this.#spoilt && this.#client.requestDone && !this.#client.upgrade && this.#responseHead.response.keepAlive && reusable(socket);
    setUser(socket, null);
    if (!keep) socket.destroy();
    else if (this.#client.proxyHeader === null) this.#host.upstreamSockets.put(upstream, socket);
    else {
      socket.resume();
      (this.#private ??= new Map()).set(upstream, socket);
    }
  }

  /** Close the exchange's upstream connection, if any (the client left, or tether answers instead). */
  drop(): void {
    const socket = this.#socket;
    this.#socket = null;
    if (socket === null) return;
    setUser(socket, null);
    socket.destroy();
  }

  /** Ready for the next request: timers stopped, the response parser back to the listener. */
  reset(): void {
    this.#clearConnectTimer();
    this.#state = RES_DONE;
    this.#responseHead.reset();
    this.#head = null;
    this.#replayed = false;
  }

  /** The client connection is gone: everything of it upstream closes. */
  close(): void {
    this.drop();
    this.reset();
    if (this.#private !== null) for (const socket of this.#private.values()) socket.destroy();
    this.#private = null;
  }

  // ------------------------------------------------------------------ failures

  onUpstreamError(err: NodeJS.ErrnoException): void {
    const exchange = this.#client.exchange;
    if (exchange !== null) exchange.lastError = err.code ?? err.message;
  }

  onUpstreamClose(): void {
    const exchange = this.#client.exchange;
    if (exchange === null || this.#socket === null) return;
    if (!this.#connected) {
      this.#clearConnectTimer();
      this.#socket = null;
      const error = exchange.lastError || 'closed';
      exchange.lastError = error;
      this.#host.connectFailed(exchange, exchange.upstream!, error);
      this.#tryNext();
      return;
    }
    switch (this.#state) {
      case RES_HEAD:
        // The head is in and its pins are being stored: what came with it is kept, and
        // the close is looked at once they are (afterLearning).
        if (this.#responseHead.learning) return;
        if (this.#reused && !this.#replayed && !this.#seen && this.#client.requestDone && this.#client.request.bodyKind === Body.None && REPLAYABLE.has(exchange.method)) {
          // A kept-alive connection the upstream had just closed: the request never
          // reached it, so replaying it once on a fresh connection is safe.
          this.#replayed = true;
          this.#socket = null;
          this.#use(exchange.upstream!, true);
          return;
        }
        this.broke(`upstream error: ${exchange.lastError || 'closed before answering'}`);
        return;
      case RES_BODY:
        if (this.#body.kind === Body.UntilClose) {
          this.#spoilt = true;
          this.#done(EMPTY, 0);
          return;
        }
        this.#client.close(`upstream aborted: ${exchange.lastError || 'closed mid-response'}`);
        return;
    }
  }

  /** The upstream broke the exchange: 502 if the client has had nothing of the response, else a close. */
  broke(reason: string): void {
    this.#spoilt = true;
    this.#socket?.destroy();
    this.#client.answer(502, 'the upstream closed before answering', 'connect_failed', reason);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
  }
}

function onConnectTimeout(side: UpstreamSide): void {
  side.connectTimedOut();
}
