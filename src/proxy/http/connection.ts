import type net from 'node:net';
import type { ListenerConfig } from '../../config/types.js';
import { requestKey } from '../../routing/keys.js';
import type { RouteDecision } from '../../routing/types.js';
import { formatAddress, type Upstream } from '../../routing/upstream.js';
import { idleClock } from '../idle.js';
import type { Outcome } from '../types.js';
import { Exchange } from './exchange.js';
import { CONNECTION_CLOSE, CONNECTION_KEEP_ALIVE, CONNECTION_UPGRADE, forwardHead } from './forward-head.js';
import { Body, ChunkedFramer, FAILED, h1ErrorName, h1ErrorStatus, NEED_MORE, type RequestHead, type ResponseHead } from './h1/index.js';
import { errorResponse } from './headers.js';
import { connectUpstream, detachUpstream, reusable, setUser, type UpstreamSocket, type UpstreamUser, type UpstreamSockets } from './upstream-sockets.js';

/** What a client connection needs from its listener. */
export interface ConnectionHost {
  readonly config: ListenerConfig;
  /** Draining: every answer closes its connection. */
  readonly closing: boolean;
  readonly upstreamSockets: UpstreamSockets;
  takeRequestParser(): RequestHead;
  takeResponseParser(): ResponseHead;
  giveRequestParser(parser: RequestHead): void;
  giveResponseParser(parser: ResponseHead): void;
  /** The upstreams to try for `key`: a pin's first, else the hash order, or p2c. */
  decide(key: string | null): RouteDecision | Promise<RouteDecision>;
  /** A request was read (in flight until it ends, or becomes a tunnel). */
  begun(): void;
  /** Routed (metrics). */
  started(exchange: Exchange): void;
  acquire(exchange: Exchange, upstream: Upstream): void;
  release(exchange: Exchange, upstream: Upstream): void;
  connectFailed(exchange: Exchange, upstream: Upstream, error: string): void;
  connectSucceeded(upstream: Upstream): void;
  /** Learn pins from a response head; resolves once they are stored (null: nothing to learn). */
  learn(upstream: Upstream, head: ResponseHead): Promise<void> | null;
  /** The exchange is over: count and log it. */
  ended(exchange: Exchange): void;
  /** A request turned away before routing: count and log it. */
  reject(connection: HttpConnection, outcome: Outcome, reason: string): void;
  /** The upstream answered 101: the two sockets become a tunnel. */
  tunnel(exchange: Exchange, client: net.Socket, upstream: UpstreamSocket, toClient: Buffer, toUpstream: Buffer | null): void;
  /** The connection is closed, or handed to a tunnel. */
  released(connection: HttpConnection): void;
  /** The PROXY header this client's upstream connections start with, or null (TETHER_PROXY_PROTOCOL). */
  proxyHeaderFor(connection: HttpConnection): Buffer | null;
}

// Client-side phases.
/** Between requests: no byte of the next head yet. */
const IDLE = 0;
/** Reading a request head. */
const HEAD = 1;
/** Head read: routing, connecting (the client's bytes wait, paused). */
const ROUTING = 2;
/** The request is upstream: its body relayed, its response awaited and relayed. */
const EXCHANGE = 3;
/** tether's own answer is out; what the client still sends is read and dropped. */
const CLOSING = 4;
/** Closed, or handed to a tunnel. */
const DONE = 5;

// Response states, during EXCHANGE.
const RES_HEAD = 0;
/** The head is in; pins it teaches are being stored before it goes on. */
const RES_LEARNING = 1;
const RES_BODY = 2;
const RES_DONE = 3;

/** After a refusal: close once the client has sent nothing for this long ... */
const LINGER_QUIET_MS = 500;
/** ... or after this long in all. */
const LINGER_MAX_MS = 5_000;

/** Methods that carry no body and may be replayed on a fresh connection. */
const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'TRACE']);

const kConnection = Symbol('tether.httpConnection');
type ClientSocket = net.Socket & { [kConnection]?: HttpConnection };

/**
 * One client connection in http mode: requests read as bytes (h1/), each routed on
 * its own key, written upstream as received (less hop-by-hop fields), the response
 * relayed the same way. One request at a time: pipelined requests wait, read but
 * unparsed, until the one before is answered, so answers stay in order and a
 * refusal never overtakes a routed request.
 *
 * Bad input gets its status and a close: 400 malformed or ambiguous head (h1/'s
 * rules, stricter than llhttp's), missing Host on HTTP/1.1, a bad chunk, or an
 * upgrade request with a body; 408 head not complete within TETHER_HEAD_TIMEOUT_MS;
 * 431 head over TETHER_MAX_HEAD_BYTES; 501 CONNECT; 502 upstream closed or broke
 * before answering; 503 no upstream.
 */
export class HttpConnection implements UpstreamUser {
  readonly socket: ClientSocket;
  readonly host: ConnectionHost;
  /** The `source-ip` key form: the peer's, or what a trusted PROXY header said. */
  address: string;
  port: number;
  /** The address the client connected to (Host for HTTP/1.0, an outgoing PROXY header). */
  destAddress: string;
  destPort: number;
  phase: number = IDLE;
  /** When the head being waited for started (`performance.now()`): the connection's start for the first one; 0 between requests. */
  headStartedAt: number;
  /** `idleClock.now` when a byte last moved either way. */
  activeAt = idleClock.now;
  exchange: Exchange | null = null;

  #req: RequestHead | null = null;
  #res: ResponseHead | null = null;
  #chunked: ChunkedFramer | null = null;
  /** Body bytes still due (Content-Length framing), request or response. */
  #reqRemaining = 0;
  #resRemaining = 0;
  #reqChunked = false;
  #resKind: number = Body.None;
  /** A request head spans reads (its bytes are copied out of the parser). */
  #reqHeadSpans = false;
  #resHeadSpans = false;
  /** Client bytes read and not yet relayed or parsed (the next requests). */
  #pending: Buffer | null = null;
  /** Upstream bytes read while the response head's pins were stored. */
  #upPending: Buffer | null = null;
  #clientEnded = false;

  #upstream: UpstreamSocket | null = null;
  #connected = false;
  #reused = false;
  #replayed = false;
  #connectTimer: NodeJS.Timeout | null = null;
  /** The head written upstream (kept for a replay). */
  #outHead: Buffer | null = null;
  #upgrade = false;
  #requestDone = false;
  #resState: number = RES_DONE;
  #responseStarted = false;
  /** A byte of the response has come. */
  #resSeen = false;
  /** The client connection closes after this response. */
  #closeAfter = false;
  /** The upstream connection cannot carry another request. */
  #upstreamSpoilt = false;
  /** Upstream connections private to this client (TETHER_PROXY_PROTOCOL), idle between its requests. */
  #private: Map<Upstream, UpstreamSocket> | null = null;

  /** Reading requests (an inbound PROXY header comes before, on its own deadline). */
  #serving = false;
  #lingerUntil = 0;
  #lingerTimer: NodeJS.Timeout | null = null;

  constructor(host: ConnectionHost, socket: net.Socket, address: string, port: number) {
    this.host = host;
    this.socket = socket as ClientSocket;
    this.address = address;
    this.port = port;
    this.destAddress = socket.localAddress ?? '';
    this.destPort = socket.localPort ?? 0;
    this.headStartedAt = performance.now();
    this.socket[kConnection] = this;
    socket.on('close', onClientClose);
    socket.on('error', onClientError);
  }

  /** Start reading requests (after any PROXY header). */
  serve(): void {
    const socket = this.socket;
    this.#serving = true;
    socket.on('data', onClientData);
    socket.on('end', onClientEnd);
    socket.on('drain', onClientDrain);
    socket.resume();
  }

  /** Nothing under way and nothing of a next request read: a drain may close it now. */
  get idle(): boolean {
    return this.phase === IDLE && this.#pending === null;
  }

  /** Close at once (drain deadline, shutdown, an upstream removed). */
  close(reason: string): void {
    if (this.exchange !== null && !this.exchange.reason) this.exchange.reason = reason;
    this.socket.destroy();
  }

  // ------------------------------------------------------------------ deadlines

  /** The listener's sweep: the head deadline (408), and silence (TETHER_IDLE_TIMEOUT_MS). */
  sweep(now: number, headTimeoutMs: number, idleMs: number): void {
    if (!this.#serving) return;
    if (this.phase === HEAD || (this.phase === IDLE && this.headStartedAt > 0)) {
      if (now - this.headStartedAt >= headTimeoutMs) this.#refuse(408, 'timeout', 'request head not received in time', 'request head not received in time', true);
      return;
    }
    if (idleMs <= 0 || this.phase === CLOSING || this.phase === DONE) return;
    if (now - this.activeAt < idleMs) return;
    if (this.exchange !== null) {
      this.exchange.outcome = 'timeout';
      if (!this.exchange.reason) this.exchange.reason = 'idle timeout';
    }
    this.socket.destroy();
  }

  // ------------------------------------------------------------------ client bytes

  onClientData(chunk: Buffer): void {
    this.activeAt = idleClock.now;
    this.#consume(chunk, 0);
  }

  /** Take `buf` from `at` in the current phase. */
  #consume(buf: Buffer, at: number): void {
    switch (this.phase) {
      case IDLE:
        this.phase = HEAD;
        if (this.headStartedAt === 0) this.headStartedAt = performance.now();
        this.#req ??= this.host.takeRequestParser();
        this.#readHead(buf, at);
        return;
      case HEAD:
        this.#readHead(buf, at);
        return;
      case EXCHANGE:
        if (!this.#requestDone) {
          at = this.#relayRequestBody(buf, at);
          if (at < 0) return;
        }
        this.#stash(buf, at);
        return;
      case CLOSING:
        this.#lingered();
        return;
      case DONE:
        return;
      default:
        this.#stash(buf, at);
    }
  }

  /** Keep the client's bytes from `at` for later and stop reading. */
  #stash(buf: Buffer, at: number): void {
    if (at >= buf.length) return;
    const rest = at === 0 ? buf : buf.subarray(at);
    this.#pending = this.#pending === null ? rest : Buffer.concat([this.#pending, rest]);
    this.socket.pause();
  }

  /** Go on with the bytes kept while the last request was under way; read again if they are used up. */
  #resumeClient(): void {
    const pending = this.#pending;
    if (pending !== null) {
      this.#pending = null;
      this.#consume(pending, 0);
    }
    if (this.#pending !== null || this.phase === DONE || this.phase === CLOSING || this.phase === ROUTING) return;
    // The upstream is not taking the body as fast: 'drain' resumes.
    if (this.phase === EXCHANGE && !this.#requestDone && this.#upstream !== null && this.#upstream.writableNeedDrain) return;
    if (this.#clientEnded) {
      this.#clientEndedNow();
      return;
    }
    this.socket.resume();
  }

  #readHead(buf: Buffer, at: number): void {
    const req = this.#req!;
    const end = req.execute(buf, at, buf.length);
    if (end === NEED_MORE) {
      this.#reqHeadSpans = true;
      return;
    }
    if (end === FAILED) {
      const status = h1ErrorStatus(req.error);
      this.#refuse(status, 'bad_request', `${status}: ${h1ErrorName(req.error)}`, status === 431 ? 'request head too large' : 'malformed request', false);
      return;
    }
    const length = req.bytes.length;
    const head = this.#reqHeadSpans ? Buffer.from(req.bytes) : buf.subarray(end - length, end);
    this.#reqHeadSpans = false;
    this.socket.pause();
    this.#stash(buf, end);
    this.#request(head);
  }

  /** A whole request head: refused, or routed and sent. */
  #request(received: Buffer): void {
    const req = this.#req!;
    if (req.isConnect) return this.#refuse(501, 'refused', '501: CONNECT', 'CONNECT is not supported: tether is not a forward proxy', false);
    if (req.versionMinor === 1 && !req.hasHost) return this.#refuse(400, 'bad_request', '400: no Host', 'malformed request', false);
    this.#upgrade = req.upgrade;
    if (this.#upgrade && req.bodyKind !== Body.None) {
      return this.#refuse(400, 'bad_request', '400: upgrade request with a body', 'an upgrade request cannot carry a body', false);
    }
    const exchange = new Exchange(this, this.address, this.port, req.method);
    this.exchange = exchange;
    this.host.begun();
    this.phase = ROUTING;
    this.headStartedAt = 0;
    exchange.fromClient = received.length;
    this.#outHead = forwardHead(req, received, this.#upgrade, this.#linesToAdd(req));
    this.#reqChunked = req.bodyKind === Body.Chunked;
    this.#reqRemaining = req.bodyKind === Body.Length ? req.contentLength : 0;
    this.#requestDone = req.bodyKind === Body.None;
    const found = requestKey(this.host.config.key, req, this.address);
    if (found !== null) {
      exchange.key = found.key;
      exchange.keySource = found.source;
    }
    const decision = this.host.decide(exchange.key);
    if (!(decision instanceof Promise)) return this.#routed(exchange, decision);
    decision.then(
      (d) => this.#routed(exchange, d),
      (err: unknown) => {
        exchange.reason = `routing failed: ${String(err)}`;
        this.socket.destroy();
      },
    );
  }

  /** Lines the relay adds to a request: the Connection it owns, and Host for HTTP/1.0 without one. */
  #linesToAdd(req: RequestHead): string {
    let add = this.#upgrade ? CONNECTION_UPGRADE : req.versionMinor === 0 ? CONNECTION_KEEP_ALIVE : '';
    // HTTP/1.0 need not carry Host; a strict upstream may want it: name the address the client reached.
    if (!req.hasHost) add += `Host: ${formatAddress(this.destAddress, this.destPort)}\r\n`;
    return add;
  }

  #routed(exchange: Exchange, decision: RouteDecision): void {
    if (this.exchange !== exchange) return;
    exchange.via = decision.via;
    exchange.candidates = decision.candidates;
    this.host.started(exchange);
    this.#tryNext();
  }

  #tryNext(): void {
    const exchange = this.exchange!;
    while (exchange.attempt < exchange.candidates.length) {
      const upstream = exchange.candidates[exchange.attempt++]!;
      // Routing may predate a health change: skip upstreams gone down meanwhile.
      if (!upstream.healthy || upstream.removed) continue;
      this.#use(upstream, false);
      return;
    }
    const tried = exchange.candidates.length > 0;
    this.#answer(
      503,
      tried ? 'no upstream answered' : 'no upstream available',
      tried ? 'connect_failed' : 'no_upstream',
      tried ? `connect failed: ${exchange.lastError}` : 'no upstream',
    );
  }

  /** Send the request to `upstream`, on a kept-alive connection unless `fresh` (or an upgrade). */
  #use(upstream: Upstream, fresh: boolean): void {
    const exchange = this.exchange!;
    if (exchange.upstream !== upstream) {
      if (exchange.upstream !== null) this.host.release(exchange, exchange.upstream);
      exchange.upstream = upstream;
      this.host.acquire(exchange, upstream);
    }
    if (!fresh && !this.#upgrade) {
      const socket = this.#takeIdle(upstream);
      if (socket !== null) {
        this.#upstream = socket;
        this.#connected = true;
        this.#reused = true;
        this.#send();
        return;
      }
    }
    this.#reused = false;
    this.#connected = false;
    this.#upstream = connectUpstream(upstream, this, this.host.proxyHeaderFor(this));
    this.#connectTimer = setTimeout(onConnectTimeout, this.host.config.connectTimeoutMs, this);
  }

  #takeIdle(upstream: Upstream): UpstreamSocket | null {
    const own = this.#private;
    if (this.host.proxyHeaderFor(this) === null) return this.host.upstreamSockets.take(upstream, this);
    if (own === null) return null;
    const socket = own.get(upstream);
    if (socket === undefined) return null;
    own.delete(upstream);
    if (!reusable(socket)) return null;
    setUser(socket, this);
    return socket;
  }

  onUpstreamConnect(): void {
    this.#clearConnectTimer();
    this.#connected = true;
    this.host.connectSucceeded(this.exchange!.upstream!);
    this.#send();
  }

  connectTimedOut(): void {
    this.#connectTimer = null;
    const socket = this.#upstream;
    if (socket === null || this.#connected) return;
    const err: NodeJS.ErrnoException = new Error('connect timeout');
    err.code = 'connect timeout';
    socket.destroy(err);
  }

  /** The upstream connection is open: the head, then what the client has sent of the body. */
  #send(): void {
    const upstream = this.#upstream!;
    this.phase = EXCHANGE;
    this.#resState = RES_HEAD;
    this.#responseStarted = false;
    this.#resSeen = false;
    this.#upstreamSpoilt = false;
    const res = (this.#res ??= this.host.takeResponseParser());
    res.reset(this.exchange!.method);
    if (this.#reqChunked) (this.#chunked ??= new ChunkedFramer({ maxTrailerBytes: this.host.config.maxHeadBytes })).reset();
    // The head and the body that came with it leave in one write.
    const corked = !this.#requestDone && this.#pending !== null;
    if (corked) upstream.cork();
    upstream.write(this.#outHead!);
    // The body (and whatever follows it) as far as it has come; then read on.
    this.#resumeClient();
    if (corked) upstream.uncork();
  }

  /** Relay request body bytes from `at`; the offset after the body once it ends, else -1. */
  #relayRequestBody(buf: Buffer, at: number): number {
    let end: number;
    if (this.#reqChunked) {
      end = this.#chunked!.execute(buf, at, buf.length);
      if (end === FAILED) {
        this.#badRequestBody();
        return -1;
      }
    } else if (buf.length - at < this.#reqRemaining) {
      this.#reqRemaining -= buf.length - at;
      end = NEED_MORE;
    } else {
      end = at + this.#reqRemaining;
      this.#reqRemaining = 0;
    }
    const stop = end === NEED_MORE ? buf.length : end;
    if (stop > at) {
      this.exchange!.fromClient += stop - at;
      const upstream = this.#upstream!;
      if (!upstream.write(at === 0 && stop === buf.length ? buf : buf.subarray(at, stop))) this.socket.pause();
    }
    if (end === NEED_MORE) return -1;
    this.#requestDone = true;
    return end;
  }

  /** A malformed chunk: the upstream has part of a body it must not wait on. */
  #badRequestBody(): void {
    this.#upstreamSpoilt = true;
    this.#answer(400, 'malformed request', 'bad_request', `400: ${h1ErrorName(this.#chunked!.error)} in the request body`);
  }

  onUpstreamDrain(): void {
    if (this.phase === EXCHANGE && !this.#requestDone && this.#pending === null) this.socket.resume();
  }

  onClientDrain(): void {
    if (this.phase === EXCHANGE && this.#resState === RES_BODY) this.#upstream?.resume();
  }

  // ------------------------------------------------------------------ the response

  onUpstreamData(chunk: Buffer): void {
    this.activeAt = idleClock.now;
    this.#resSeen = true;
    switch (this.#resState) {
      case RES_HEAD:
        this.#readResponseHead(chunk, 0);
        return;
      case RES_BODY:
        this.#relayResponseBody(chunk, 0);
        return;
      case RES_LEARNING:
        this.#upPending = this.#upPending === null ? chunk : Buffer.concat([this.#upPending, chunk]);
        return;
      default:
        // Bytes after the response: this connection's framing cannot be trusted again.
        this.#upstreamSpoilt = true;
    }
  }

  #readResponseHead(buf: Buffer, at: number): void {
    const res = this.#res!;
    for (;;) {
      const end = res.execute(buf, at, buf.length);
      if (end === NEED_MORE) {
        this.#resHeadSpans = true;
        return;
      }
      if (end === FAILED) {
        this.#upstreamBroke(`malformed response: ${h1ErrorName(res.error)}`);
        return;
      }
      const length = res.bytes.length;
      const head = this.#resHeadSpans ? Buffer.from(res.bytes) : buf.subarray(end - length, end);
      this.#resHeadSpans = false;
      if (!res.interim) {
        this.#responseHead(head, buf, end);
        return;
      }
      // 100 Continue and other interim answers go on as they came; the final one follows.
      this.exchange!.toClient += head.length;
      this.socket.write(head);
      res.reset(this.exchange!.method);
      at = end;
    }
  }

  #responseHead(head: Buffer, buf: Buffer, end: number): void {
    const exchange = this.exchange!;
    const res = this.#res!;
    exchange.status = res.status;
    if (res.bodyKind === Body.Tunnel && !this.#upgrade) {
      this.#upstreamBroke(`unexpected ${res.status} response`);
      return;
    }
    // A pin is stored before the response that taught it reaches the client
    // (docs/routing.md, rule 11), so the client's next request finds it anywhere.
    const learning = this.host.learn(exchange.upstream!, res);
    if (learning === null) {
      this.#afterHead(head, buf, end);
      return;
    }
    this.#resState = RES_LEARNING;
    const upstream = this.#upstream!;
    upstream.pause();
    if (end < buf.length) this.#upPending = buf.subarray(end);
    learning.then(
      () => this.#learned(head),
      (err: unknown) => {
        exchange.reason = `storing pins failed: ${String(err)}`;
        this.socket.destroy();
      },
    );
  }

  #learned(head: Buffer): void {
    if (this.#resState !== RES_LEARNING || this.phase !== EXCHANGE) return;
    const rest = this.#upPending;
    this.#upPending = null;
    const upstream = this.#upstream!;
    if (rest === null) this.#afterHead(head, EMPTY, 0);
    else this.#afterHead(head, rest, 0);
    if ((this.#resState as number) === RES_BODY && upstream === this.#upstream) {
      if (upstream.destroyed) this.onUpstreamClose();
      else upstream.resume();
    }
  }

  /** The final response head, pins stored: on to the client, then its body from `buf[at]`. */
  #afterHead(head: Buffer, buf: Buffer, at: number): void {
    const res = this.#res!;
    if (res.bodyKind === Body.Tunnel) {
      this.#tunnel(head, buf, at);
      return;
    }
    const req = this.#req!;
    this.#resKind = res.bodyKind;
    // Another request can follow only when both sides said so and the end of this
    // response is known; and not after an early answer while the body still comes.
    this.#closeAfter = !req.keepAlive || this.host.closing || res.bodyKind === Body.UntilClose || !this.#requestDone;
    const add = this.#closeAfter ? CONNECTION_CLOSE : req.versionMinor === 0 ? CONNECTION_KEEP_ALIVE : '';
    const out = forwardHead(res, head, false, add);
    const exchange = this.exchange!;
    exchange.toClient += out.length;
    this.#responseStarted = true;
    this.#resState = RES_BODY;
    if (res.bodyKind === Body.Chunked) (this.#chunked ??= new ChunkedFramer()).reset();
    else this.#resRemaining = res.bodyKind === Body.Length ? res.contentLength : 0;
    const socket = this.socket;
    if (res.bodyKind === Body.None || at === buf.length) {
      if (!socket.write(out)) this.#upstream!.pause();
      if (res.bodyKind === Body.None) this.#responseDone(buf, at);
      return;
    }
    // The head and the body that came with it leave in one write: one slice when the
    // head goes on as it came, right before the body in the same read.
    if (out === head && at >= head.length && head.buffer === buf.buffer && head.byteOffset + head.length === buf.byteOffset + at) {
      exchange.toClient -= head.length;
      this.#relayResponseBody(buf, at, at - head.length);
      return;
    }
    socket.cork();
    if (!socket.write(out)) this.#upstream!.pause();
    this.#relayResponseBody(buf, at, at);
    socket.uncork();
  }

  /** Relay response body bytes from `at` (writing from `writeFrom`, where a head before them goes along). */
  #relayResponseBody(buf: Buffer, at: number, writeFrom = at): void {
    let end: number;
    if (this.#resKind === Body.Chunked) {
      end = this.#chunked!.execute(buf, at, buf.length);
      if (end === FAILED) {
        this.#upstreamBroke(`malformed response body: ${h1ErrorName(this.#chunked!.error)}`);
        return;
      }
    } else if (this.#resKind === Body.UntilClose || buf.length - at < this.#resRemaining) {
      this.#resRemaining -= buf.length - at;
      end = NEED_MORE;
    } else {
      end = at + this.#resRemaining;
      this.#resRemaining = 0;
    }
    const stop = end === NEED_MORE ? buf.length : end;
    if (stop > writeFrom) {
      this.exchange!.toClient += stop - writeFrom;
      if (!this.socket.write(writeFrom === 0 && stop === buf.length ? buf : buf.subarray(writeFrom, stop))) this.#upstream!.pause();
    }
    if (end !== NEED_MORE) this.#responseDone(buf, end);
  }

  #responseDone(buf: Buffer, end: number): void {
    this.#resState = RES_DONE;
    if (end < buf.length) this.#upstreamSpoilt = true;
    // An early answer ends the exchange too: the connection closes after it.
    if (this.#requestDone || this.#closeAfter) this.#finish();
  }

  /** The exchange is over: its upstream connection kept or closed, the client served on or closed. */
  #finish(): void {
    const exchange = this.exchange!;
    const upstream = exchange.upstream!;
    const socket = this.#upstream;
    this.#upstream = null;
    if (socket !== null) {
      const keep = !this.#upstreamSpoilt && this.#requestDone && !this.#upgrade && this.#res!.keepAlive && reusable(socket);
      setUser(socket, null);
      if (!keep) socket.destroy();
      else if (this.host.proxyHeaderFor(this) === null) this.host.upstreamSockets.put(upstream, socket);
      else {
        socket.resume();
        (this.#private ??= new Map()).set(upstream, socket);
      }
    }
    this.#endExchange();
    if (this.#closeAfter) {
      // Nothing more is parsed (RFC 9112 9.6); the same lingering close as after an answer of ours.
      this.#answerAndClose(null, false);
      return;
    }
    this.phase = IDLE;
    this.#req!.reset();
    if (this.#pending === null) {
      // Idle between requests: the parsers go back for other connections.
      this.host.giveRequestParser(this.#req!);
      this.#req = null;
    }
    this.#resumeClient();
  }

  #endExchange(): void {
    const exchange = this.exchange!;
    this.exchange = null;
    this.#clearConnectTimer();
    if (this.#res !== null) {
      this.host.giveResponseParser(this.#res);
      this.#res = null;
    }
    this.#outHead = null;
    this.#upPending = null;
    this.#replayed = false;
    if (exchange.upstream !== null) this.host.release(exchange, exchange.upstream);
    if (!exchange.reason) exchange.reason = exchange.status > 0 ? 'answered' : 'client closed';
    this.host.ended(exchange);
  }

  // ------------------------------------------------------------------ upgrades

  /** The upstream said 101: the client gets its head as sent, and both sockets become a tunnel. */
  #tunnel(head: Buffer, buf: Buffer, at: number): void {
    const exchange = this.exchange!;
    const upstream = this.#upstream!;
    this.#upstream = null;
    this.exchange = null;
    this.phase = DONE;
    const socket = this.socket;
    socket.removeListener('data', onClientData);
    socket.removeListener('end', onClientEnd);
    socket.removeListener('drain', onClientDrain);
    socket.removeListener('close', onClientClose);
    socket.removeListener('error', onClientError);
    socket.pause();
    this.#releaseParsers();
    this.host.released(this);
    // Handed over, not ended: the tunnel is counted and logged as one connection when it closes.
    this.host.release(exchange, exchange.upstream!);
    const toClient = at < buf.length ? Buffer.concat([head, buf.subarray(at)]) : head;
    const toUpstream = this.#pending;
    this.#pending = null;
    detachUpstream(upstream);
    this.host.tunnel(exchange, socket, upstream, toClient, toUpstream);
  }

  // ------------------------------------------------------------------ failures and closes

  onUpstreamError(err: NodeJS.ErrnoException): void {
    if (this.exchange !== null) this.exchange.lastError = err.code ?? err.message;
  }

  onUpstreamClose(): void {
    const exchange = this.exchange;
    const socket = this.#upstream;
    if (exchange === null || socket === null) return;
    if (!this.#connected) {
      this.#clearConnectTimer();
      this.#upstream = null;
      const error = exchange.lastError || 'closed';
      exchange.lastError = error;
      this.host.connectFailed(exchange, exchange.upstream!, error);
      this.#tryNext();
      return;
    }
    switch (this.#resState) {
      case RES_HEAD:
        if (this.#reused && !this.#replayed && !this.#resSeen && this.#requestDone && this.#bodyless() && REPLAYABLE.has(exchange.method)) {
          // A kept-alive connection the upstream had just closed: the request never
          // reached it, so replaying it once on a fresh connection is safe.
          this.#replayed = true;
          this.#upstream = null;
          this.#use(exchange.upstream!, true);
          return;
        }
        this.#upstreamBroke(`upstream error: ${exchange.lastError || 'closed before answering'}`);
        return;
      case RES_BODY:
        if (this.#resKind === Body.UntilClose) {
          this.#upstreamSpoilt = true;
          this.#responseDone(EMPTY, 0);
          return;
        }
        exchange.reason = `upstream aborted: ${exchange.lastError || 'closed mid-response'}`;
        this.socket.destroy();
        return;
      case RES_LEARNING:
        // The head is in; what came with it is kept. Its end is looked at once the pins are stored.
        return;
    }
  }

  #bodyless(): boolean {
    const req = this.#req!;
    return req.bodyKind === Body.None;
  }

  /** The upstream broke the exchange: 502 if the client has had nothing of the response, else a close. */
  #upstreamBroke(reason: string): void {
    this.#upstreamSpoilt = true;
    this.#upstream?.destroy();
    this.#answer(502, 'the upstream closed before answering', 'connect_failed', reason);
  }

  /** tether's own answer to a routed request (502, 503, 400 for a bad body); the connection then closes. */
  #answer(status: number, detail: string, outcome: Outcome, reason: string): void {
    const exchange = this.exchange!;
    exchange.status = status;
    exchange.outcome = outcome;
    exchange.reason = reason;
    if (this.#responseStarted) {
      this.socket.destroy();
      return;
    }
    const answer = errorResponse(status, detail);
    exchange.toClient += answer.length;
    const socket = this.#upstream;
    this.#upstream = null;
    if (socket !== null) {
      setUser(socket, null);
      socket.destroy();
    }
    this.#endExchange();
    this.#answerAndClose(answer, false);
  }

  /** A request refused before routing: counted, answered, closed. `now`: no lingering (a client too slow for its head). */
  #refuse(status: number, outcome: Outcome, reason: string, detail: string, now: boolean): void {
    this.host.reject(this, outcome, reason);
    this.#answerAndClose(errorResponse(status, detail), now);
  }

  /**
   * Write tether's own answer (null: none, the response just sent closes it) and close: at once, or after a lingering close (nginx's
   * lingering_close, for the same reason): a client may still be sending the rest of
   * a bad request when its answer goes out; closed at once, the socket would meet
   * those bytes with a reset, and a client whose write then fails (EPIPE) drops the
   * answer unread. So after our FIN the rest is read and dropped until the client
   * closes, is quiet for LINGER_QUIET_MS, or LINGER_MAX_MS have passed.
   */
  #answerAndClose(answer: Buffer | null, now: boolean): void {
    this.phase = CLOSING;
    this.#pending = null;
    this.#releaseParsers();
    const socket = this.socket;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    if (answer === null) socket.end();
    else socket.end(answer);
    if (now || this.#clientEnded) {
      socket.destroySoon();
      return;
    }
    this.#lingerUntil = performance.now() + LINGER_MAX_MS;
    this.#lingerTimer = setTimeout(destroySocket, LINGER_QUIET_MS, socket);
    socket.resume();
  }

  #lingered(): void {
    if (this.#lingerTimer === null) return;
    if (performance.now() >= this.#lingerUntil) this.socket.destroy();
    else this.#lingerTimer.refresh();
  }

  onClientEnd(): void {
    this.#clientEnded = true;
    if (this.phase === CLOSING) {
      this.socket.destroy();
      return;
    }
    // Bytes kept for later are still to be answered; the end is acted on after them.
    if (this.#pending !== null) return;
    this.#clientEndedNow();
  }

  /** The client has sent all it will, and every byte of it has been taken. */
  #clientEndedNow(): void {
    switch (this.phase) {
      case IDLE:
        this.socket.end();
        this.socket.destroySoon();
        return;
      case HEAD:
        // Nothing but empty lines before the end: nothing was asked.
        if (this.#req!.bytes.length === 0) {
          this.socket.end();
          this.socket.destroySoon();
          return;
        }
        this.#refuse(400, 'bad_request', '400: connection ended inside a request head', 'incomplete request', true);
        return;
      case EXCHANGE:
        if (!this.#requestDone) {
          // Cut off mid-body: the upstream must not wait for the rest.
          this.exchange!.reason = 'client aborted the request';
          this.socket.destroy();
        }
        return;
    }
  }

  onClientClose(): void {
    const previous = this.phase;
    this.phase = DONE;
    this.#clearConnectTimer();
    if (this.#lingerTimer !== null) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = null;
    if (this.exchange !== null) {
      const socket = this.#upstream;
      this.#upstream = null;
      if (socket !== null) {
        setUser(socket, null);
        socket.destroy();
      }
      if (!this.exchange.reason) this.exchange.reason = previous === CLOSING ? 'answered' : 'client closed';
      this.#endExchange();
    }
    if (this.#private !== null) for (const socket of this.#private.values()) socket.destroy();
    this.#private = null;
    this.#pending = null;
    this.#releaseParsers();
    this.host.released(this);
  }

  #releaseParsers(): void {
    if (this.#req !== null) {
      this.#req.reset();
      this.host.giveRequestParser(this.#req);
      this.#req = null;
    }
    if (this.#res !== null) {
      this.host.giveResponseParser(this.#res);
      this.#res = null;
    }
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
  }
}

const EMPTY = Buffer.alloc(0);

function connectionOf(socket: net.Socket): HttpConnection | undefined {
  return (socket as ClientSocket)[kConnection];
}

function onClientData(this: net.Socket, chunk: Buffer): void {
  connectionOf(this)?.onClientData(chunk);
}

function onClientEnd(this: net.Socket): void {
  connectionOf(this)?.onClientEnd();
}

function onClientDrain(this: net.Socket): void {
  connectionOf(this)?.onClientDrain();
}

function onClientClose(this: net.Socket): void {
  connectionOf(this)?.onClientClose();
}

function onClientError(): void {
  // 'close' follows.
}

function onConnectTimeout(connection: HttpConnection): void {
  connection.connectTimedOut();
}

function destroySocket(socket: net.Socket): void {
  socket.destroy();
}
