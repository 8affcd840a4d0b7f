import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import { errorMessage } from '../../errors.js';
import type { KeySourceName, RouteVia } from '../../routing/types.js';
import { formatAddress, type Upstream } from '../../routing/upstream.js';
import { errorBody, forwardHeaders, headBytes, isChunked } from './headers.js';
import type { Outcome } from '../types.js';

/** What an exchange needs from its listener. */
export interface ExchangeContext {
  readonly connectTimeoutMs: number;
  /** The keep-alive agent for `upstream` as seen from this client connection. */
  agentFor(client: net.Socket, upstream: Upstream): http.Agent;
  /**
   * How an upgrade request's upstream connection is made: never a pooled one. null:
   * a plain connection; else a function that also writes what must come first (a
   * PROXY header).
   */
  upgradeConnector(client: net.Socket): UpgradeConnector | null;
  /**
   * The upstream answered an upgrade request with 101: the exchange is over and the
   * connection becomes a tunnel from here (its pins are learned already).
   */
  tunnel(exchange: Exchange, response: IncomingMessage, socket: net.Socket, head: Buffer): void;
  acquire(exchange: Exchange, upstream: Upstream): void;
  release(exchange: Exchange, upstream: Upstream): void;
  /** A connect to `upstream` failed (health evidence, pin dropped when it was the pin). */
  connectFailed(exchange: Exchange, upstream: Upstream, error: string): void;
  connectSucceeded(upstream: Upstream): void;
  /** The upstream's response head arrived: learn from it; resolve when stored. */
  learn(exchange: Exchange, upstream: Upstream, response: IncomingMessage): Promise<void> | null;
  ended(exchange: Exchange): void;
}

/** node:http's `createConnection` option, as an upgrade's connection is made. */
export type UpgradeConnector = NonNullable<http.RequestOptions['createConnection']>;

const kExchange = Symbol('tether.exchange');
type Tagged<T> = T & { [kExchange]?: Exchange };

/** Request methods that carry no body and may be replayed on a fresh connection. */
const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'TRACE']);

/**
 * One request proxied to one upstream in http mode, and its response. Routed on its
 * own key (contract, Routing 7); the request body is held back until an upstream
 * connection is open, so a failed connect can move to the next candidate without
 * losing a byte. Event handlers are module-level functions that find the exchange
 * through a symbol, as in Session.
 */
export class Exchange {
  readonly ctx: ExchangeContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly client: net.Socket;
  readonly startedAt = performance.now();
  readonly clientAddress: string;
  readonly clientPort: number;
  key: string | null = null;
  keySource: KeySourceName = 'none';
  via: RouteVia = 'hash';
  candidates: Upstream[] = [];
  attempt = 0;
  upstream: Upstream | null = null;
  status = 0;
  outcome: Outcome = 'ok';
  reason = '';
  lastError = '';
  fromClient: number;
  toClient = 0;
  /**
   * An upgrade request's: the bytes the client sent after its head, held back until
   * the upstream answers 101 (any other answer is a plain response, and they are
   * parsed as the next request). null for other requests.
   */
  upgradeHead: Buffer | null = null;
  #proxyReq: Tagged<ClientRequest> | null = null;
  #response: Tagged<IncomingMessage> | null = null;
  #connected = false;
  #replayed = false;
  #clientAborted = false;
  #bodyFlowing = false;
  #done = false;

  constructor(ctx: ExchangeContext, req: IncomingMessage, res: ServerResponse, clientAddress: string, clientPort: number) {
    this.ctx = ctx;
    this.req = req;
    this.res = res;
    this.client = req.socket;
    this.clientAddress = clientAddress;
    this.clientPort = clientPort;
    this.fromClient = headBytes(req.method!.length + req.url!.length + 10, req.rawHeaders);
    (req as Tagged<IncomingMessage>)[kExchange] = this;
    (res as Tagged<ServerResponse>)[kExchange] = this;
    res.on('close', onResClose);
    res.on('drain', onResDrain);
    req.on('error', onReqError);
  }

  /** Try the candidates in order (unless the client went away while it was routed). */
  start(): void {
    if (this.#done) return;
    this.#tryNext();
  }

  /** Abort this exchange and its client connection (drain deadline, shutdown). */
  close(reason: string): void {
    if (!this.reason) this.reason = reason;
    this.#proxyReq?.destroy();
    this.client.destroy();
  }

  #tryNext(): void {
    while (this.attempt < this.candidates.length) {
      const upstream = this.candidates[this.attempt++]!;
      // Routing may predate a health change: skip upstreams gone down meanwhile.
      if (!upstream.healthy || upstream.removed) continue;
      this.#send(upstream);
      return;
    }
    const tried = this.candidates.length > 0;
    this.#answer(503, tried ? 'no upstream answered' : 'no upstream available', tried ? 'connect_failed' : 'no_upstream', tried ? `connect failed: ${this.lastError}` : 'no upstream');
  }

  #send(upstream: Upstream): void {
    if (this.upstream !== upstream) {
      if (this.upstream !== null) this.ctx.release(this, this.upstream);
      this.upstream = upstream;
      this.ctx.acquire(this, upstream);
    }
    const req = this.req;
    // headersDistinct, as the key chain reads: node:http then builds one header object, not two.
    const head = req.headersDistinct;
    const chunked = isChunked(head['transfer-encoding']?.join(','));
    const upgrade = this.upgradeHead !== null;
    const headers = forwardHeaders(req.rawHeaders, chunked, upgrade);
    // Requests go upstream as HTTP/1.1, which must carry Host; HTTP/1.0 need not,
    // and a strict upstream would answer 400. Name the address the client reached,
    // as its Host would have.
    if (head.host === undefined) headers.push('Host', formatAddress(this.client.localAddress ?? '', this.client.localPort ?? 0));
    const options: http.RequestOptions = {
      host: upstream.host,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      setHost: false,
    };
    if (!upgrade) options.agent = this.ctx.agentFor(this.client, upstream);
    else {
      // A connection of its own: it may become this client's tunnel.
      const connector = this.ctx.upgradeConnector(this.client);
      if (connector === null) options.agent = false;
      else options.createConnection = connector;
    }
    const proxyReq = http.request(options) as Tagged<ClientRequest>;
    proxyReq[kExchange] = this;
    this.#proxyReq = proxyReq;
    this.#connected = false;
    proxyReq.on('socket', onProxySocket);
    proxyReq.on('response', onProxyResponse);
    proxyReq.on('error', onProxyError);
    proxyReq.on('drain', onProxyDrain);
    if (upgrade) proxyReq.on('upgrade', onProxyUpgrade);
  }

  /** The client's request body broke off and its upstream request was aborted. */
  get aborted(): boolean {
    return this.#clientAborted;
  }

  /** The upstream socket is open (fresh or reused): let the request body flow. */
  onConnected(fresh: boolean): void {
    this.#connected = true;
    if (fresh) this.ctx.connectSucceeded(this.upstream!);
    if (this.#bodyFlowing) return;
    this.#bodyFlowing = true;
    const req = this.req;
    if (req.complete && req.readableEnded) {
      this.#proxyReq!.end();
      return;
    }
    req.on('data', onReqData);
    req.on('end', onReqEnd);
  }

  onProxyError(proxyReq: ClientRequest, err: NodeJS.ErrnoException): void {
    if (proxyReq !== this.#proxyReq || this.#done || this.#clientAborted) return;
    const error = err.code ?? err.message;
    this.lastError = error;
    if (this.#response !== null) {
      // The response was under way: cut the client off so a truncated body cannot
      // pass for a whole one.
      this.reason = `upstream aborted: ${error}`;
      this.client.destroy();
      return;
    }
    if (!this.#connected) {
      this.ctx.connectFailed(this, this.upstream!, error);
      if (!this.#bodyFlowing) {
        this.#tryNext();
        return;
      }
    } else if (proxyReq.reusedSocket && !this.#replayed && REPLAYABLE.has(this.req.method!) && this.#bodyless()) {
      // A kept-alive connection the upstream had just closed: the request never
      // reached it, so replaying it once on a fresh connection is safe.
      this.#replayed = true;
      this.#bodyFlowing = false;
      this.#send(this.upstream!);
      return;
    }
    this.#answer(502, 'the upstream closed before answering', 'connect_failed', `upstream error: ${error}`);
  }

  async onResponse(response: IncomingMessage): Promise<void> {
    const upstream = this.upstream!;
    this.#response = response as Tagged<IncomingMessage>;
    (response as Tagged<IncomingMessage>)[kExchange] = this;
    response.on('error', onUpResError);
    response.on('aborted', onUpResAborted);
    // A pin is stored before the response that taught it reaches the client
    // (contract, Routing 11), so the client's next request finds it anywhere.
    const learning = this.ctx.learn(this, upstream, response);
    if (learning !== null) await learning;
    const res = this.res;
    if (this.#done || res.destroyed) {
      response.destroy();
      return;
    }
    this.status = response.statusCode ?? 502;
    const chunked = isChunked(response.headers['transfer-encoding']) && this.req.httpVersionMinor >= 1 && this.req.httpVersionMajor >= 1;
    const headers = forwardHeaders(response.rawHeaders, chunked);
    this.toClient += headBytes(15 + (response.statusMessage?.length ?? 0), headers);
    res.writeHead(this.status, response.statusMessage, headers);
    response.on('data', onUpResData);
    response.on('end', onUpResEnd);
  }

  /** The upstream switched protocols (101): learn from its head, then hand the connection to a tunnel. */
  async onUpgrade(response: IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    const upstream = this.upstream!;
    const learning = this.ctx.learn(this, upstream, response);
    if (learning !== null) await learning;
    if (this.#done || this.client.destroyed) {
      socket.destroy();
      return;
    }
    this.status = 101;
    // Handed over, not ended: the tunnel is counted and logged as one connection
    // when it closes.
    this.#done = true;
    this.ctx.release(this, upstream);
    this.ctx.tunnel(this, response, socket, head);
  }

  onClientBody(chunk: Buffer): void {
    this.fromClient += chunk.length;
    if (this.#proxyReq !== null && !this.#proxyReq.write(chunk)) this.req.pause();
  }

  onClientBodyEnd(): void {
    this.#proxyReq?.end();
  }

  onResponseBody(chunk: Buffer): void {
    this.toClient += chunk.length;
    if (!this.res.write(chunk)) this.#response?.pause();
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResDrain(): void {
    this.#response?.resume();
  }

  onProxyDrain(): void {
    this.req.resume();
  }

  /**
   * The client response closed: finished, or the client went away first. Also called
   * by the listener when the client connection closes, since node:http never closes
   * a response queued behind another one (pipelining) that never got the socket.
   */
  onResClose(): void {
    if (!this.res.writableFinished) {
      if (!this.reason) this.reason = 'client closed';
      this.#clientAborted = true;
      this.#proxyReq?.destroy();
    }
    this.#end();
  }

  /** The request body broke off (client gone, or a malformed chunk): the upstream must not wait for the rest. */
  onClientAborted(): void {
    if (!this.reason) this.reason = 'client aborted the request';
    this.#clientAborted = true;
    this.#proxyReq?.destroy();
  }

  onUpstreamResponseAborted(): void {
    if (!this.reason) this.reason = 'upstream aborted the response';
    this.client.destroy();
  }

  #bodyless(): boolean {
    const h = this.req.headersDistinct;
    return h['transfer-encoding'] === undefined && (h['content-length'] === undefined || h['content-length'][0] === '0');
  }

  /** tether's own answer (502, 503); the connection then closes. */
  #answer(status: number, detail: string, outcome: Outcome, reason: string): void {
    this.status = status;
    this.outcome = outcome;
    this.reason = reason;
    const res = this.res;
    if (res.headersSent || res.destroyed) {
      this.client.destroy();
      return;
    }
    const body = errorBody(status, detail);
    this.toClient += body.length;
    // `connection: close`: the request body may be unread, so the connection cannot
    // carry another request. Pipelined responses stay in order: node:http writes a
    // response only once the one before it is done.
    res.shouldKeepAlive = false;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', connection: 'close' });
    res.end(body);
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.upstream !== null) this.ctx.release(this, this.upstream);
    this.ctx.ended(this);
  }
}

function exchangeOf(emitter: object): Exchange | undefined {
  return (emitter as Tagged<object>)[kExchange];
}

function onProxySocket(this: ClientRequest, socket: net.Socket): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  if (!socket.connecting) {
    ex.onConnected(false);
    return;
  }
  const tagged = socket as Tagged<net.Socket>;
  tagged[kExchange] = ex;
  socket.setTimeout(ex.ctx.connectTimeoutMs);
  socket.once('timeout', onConnectTimeout);
  socket.once('connect', onProxyConnect);
}

function onProxyConnect(this: net.Socket): void {
  const ex = exchangeOf(this);
  this.setTimeout(0);
  this.removeListener('timeout', onConnectTimeout);
  (this as Tagged<net.Socket>)[kExchange] = undefined;
  ex?.onConnected(true);
}

function onConnectTimeout(this: net.Socket): void {
  if (!this.connecting) return;
  const err: NodeJS.ErrnoException = new Error('connect timeout');
  err.code = 'connect timeout';
  this.destroy(err);
}

function onProxyError(this: ClientRequest, err: NodeJS.ErrnoException): void {
  exchangeOf(this)?.onProxyError(this, err);
}

function onProxyResponse(this: ClientRequest, response: IncomingMessage): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.onResponse(response).catch((err: unknown) => {
    ex.reason = `response failed: ${errorMessage(err)}`;
    ex.client.destroy();
  });
}

function onProxyUpgrade(this: ClientRequest, response: IncomingMessage, socket: net.Socket, head: Buffer): void {
  const ex = exchangeOf(this);
  if (ex === undefined) {
    socket.destroy();
    return;
  }
  ex.onUpgrade(response, socket, head).catch((err: unknown) => {
    socket.destroy();
    ex.reason = `upgrade failed: ${errorMessage(err)}`;
    ex.client.destroy();
  });
}

function onProxyDrain(this: ClientRequest): void {
  exchangeOf(this)?.onProxyDrain();
}

function onReqData(this: IncomingMessage, chunk: Buffer): void {
  exchangeOf(this)?.onClientBody(chunk);
}

function onReqEnd(this: IncomingMessage): void {
  exchangeOf(this)?.onClientBodyEnd();
}

function onReqError(this: IncomingMessage): void {
  exchangeOf(this)?.onClientAborted();
}

function onResClose(this: ServerResponse): void {
  exchangeOf(this)?.onResClose();
}

function onResDrain(this: ServerResponse): void {
  exchangeOf(this)?.onResDrain();
}

function onUpResData(this: IncomingMessage, chunk: Buffer): void {
  exchangeOf(this)?.onResponseBody(chunk);
}

function onUpResEnd(this: IncomingMessage): void {
  exchangeOf(this)?.onResponseEnd();
}

function onUpResError(this: IncomingMessage): void {
  exchangeOf(this)?.onUpstreamResponseAborted();
}

function onUpResAborted(this: IncomingMessage): void {
  exchangeOf(this)?.onUpstreamResponseAborted();
}
