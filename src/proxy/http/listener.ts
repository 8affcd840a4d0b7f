import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Logger } from 'pino';
import { requestKey } from '../../routing/keys.js';
import { learnedKeys } from '../../routing/learn.js';
import { routeWithPins } from '../../routing/router.js';
import type { PinStore } from '../../store/types.js';
import { cidrContains } from '../../net/cidr.js';
import type { ListenerConfig } from '../../config/types.js';
import { keyHashForLog } from '../../log.js';
import type { UpstreamPool } from '../../routing/pool.js';
import type { RouteDecision } from '../../routing/types.js';
import { formatAddress, type Upstream } from '../../routing/upstream.js';
import { sourceIpKey } from '../../net/address.js';
import { accessFields, settle } from '../access.js';
import { Acceptor } from '../acceptor.js';
import type { HealthReporter, ListenerContext, RoutedRecord } from '../context.js';
import { Exchange, type ExchangeContext, type UpgradeConnector } from './exchange.js';
import { errorResponse, serializeResponseHead } from './headers.js';
import { buildProxyHeader } from '../proxy-protocol/build.js';
import { ProxyHeaderParser } from '../proxy-protocol/parse.js';
import type { ProxyHeader } from '../proxy-protocol/header.js';
import { IdleSweeper } from '../idle.js';
import { Session } from '../session.js';
import type { Outcome } from '../types.js';
import type { ListenerCounters } from '../tcp/listener.js';

export interface HttpListenerOptions {
  readonly config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  /** This listener's learned pins. */
  readonly pins: PinStore;
  readonly logger: Logger;
  /** Child logger for access lines, or null when TETHER_ACCESS_LOG=off. */
  readonly accessLog: Logger | null;
  /** A request or upgrade was routed (metrics). */
  readonly onSessionStart?: (routed: RoutedRecord) => void;
  /** A request, upgrade or rejected connection ended (metrics). */
  readonly onSessionEnd?: (routed: RoutedRecord) => void;
}

/** What http mode knows of one client connection, kept on its socket. */
interface ClientInfo {
  /** The `source-ip` key form: the peer's, or what a trusted PROXY header said. */
  address: string;
  port: number;
  /** The address the client connected to (for an outgoing PROXY header). */
  destAddress: string;
  destPort: number;
  /** Upstream connections private to this client (only with TETHER_PROXY_PROTOCOL). */
  agents: Map<Upstream, http.Agent> | null;
  /** While reading an inbound PROXY header. */
  parser: ProxyHeaderParser | null;
  /** Ends the current wait: for the PROXY header, or the linger after a bad head. */
  headTimer: NodeJS.Timeout | null;
  /** An upgrade request waiting for the upstream's answer (the socket is out of node:http meanwhile). */
  upgrading: Exchange | null;
  /** An upgrade request that came while earlier requests were in flight: started once they end. */
  waitingUpgrade: WaitingUpgrade | null;
  /**
   * The answer to a bad request that came behind others already routed: written once
   * their responses are (responses stay in order), then the connection closes.
   */
  deferred: Buffer | null;
  /** A request on it was refused: nothing after it is routed (it closes once that answer is out). */
  refused: boolean;
  /** After a bad head was answered: until when (performance.now()) the rest is read and dropped; 0 before. */
  lingerUntil: number;
  /** Its requests in flight (made with the first request). */
  exchanges: Set<Exchange> | null;
}

interface WaitingUpgrade {
  readonly req: IncomingMessage;
  readonly head: Buffer;
}

const kClient = Symbol('tether.client');
const kListener = Symbol('tether.listener');
type ClientSocket = net.Socket & { [kClient]?: ClientInfo; [kListener]?: HttpListener };

/** How often pins of long-lived upgraded connections are renewed, at most. */
const PIN_RENEW_MAX_MS = 60_000;
/** After a 400 or 431: close once the client has sent nothing for this long ... */
const LINGER_QUIET_MS = 500;
/** ... or after this long in all. */
const LINGER_MAX_MS = 5_000;

/**
 * http mode (TETHER_MODE=http): reads HTTP/1.x request heads with node:http (llhttp:
 * the parser Node itself trusts, strict about ambiguous framing) to find each
 * request's key, routes every request on its own, learns pins from response heads,
 * and pipes upgraded (WebSocket) connections raw through a Session once their
 * upstream has answered 101 Switching Protocols (any other answer is relayed as a
 * response and the connection goes on as HTTP, parsed request by request).
 *
 * Bad input gets its status and a close: 400 malformed or ambiguous head, or a
 * version other than HTTP/1.0 and 1.1; 408 head not complete within
 * TETHER_HEAD_TIMEOUT_MS; 431 head over TETHER_MAX_HEAD_BYTES; 501 CONNECT (tether
 * is no forward proxy); 502 upstream closed before answering; 503 no upstream. A
 * request is refused before it is routed or answered after, never both: bytes after
 * a request that closes the connection are dropped (RFC 9112 9.6), and a bad
 * request behind routed ones is answered after theirs.
 */
export class HttpListener implements ListenerContext, ExchangeContext {
  #config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  readonly pins: PinStore;
  /** Upgraded connections, piped raw. */
  readonly sessions = new Set<Session>();
  readonly idle = new IdleSweeper(this.sessions, () => this.#config.idleTimeoutMs);
  /** Requests in flight. */
  readonly exchanges = new Set<Exchange>();
  /** Totals of ended requests, upgrades and rejected connections, by outcome. */
  readonly counters: ListenerCounters = {
    outcomes: { ok: 0, refused: 0, no_upstream: 0, connect_failed: 0, bad_request: 0, timeout: 0 },
    fromClient: 0,
    toClient: 0,
  };
  readonly #clients = new Set<net.Socket>();
  readonly #acceptor: Acceptor;
  #http: http.Server;
  readonly #logger: Logger;
  readonly #accessLog: Logger | null;
  readonly #onStart: ((routed: RoutedRecord) => void) | undefined;
  readonly #onEnd: ((routed: RoutedRecord) => void) | undefined;
  /** Shared keep-alive connections per upstream (nginx `keepalive`, HAProxy `http-reuse safe`). */
  readonly #agents = new WeakMap<Upstream, http.Agent>();
  /** Keys of open upgraded connections routed by a pin: kept alive while open. */
  readonly #pinned = new Map<Session, string>();
  #renewTimer: NodeJS.Timeout | null = null;
  #closing = false;

  constructor(options: HttpListenerOptions) {
    this.#config = options.config;
    this.pool = options.pool;
    this.health = options.health;
    this.pins = options.pins;
    this.#logger = options.logger;
    this.#accessLog = options.accessLog;
    this.#onStart = options.onSessionStart;
    this.#onEnd = options.onSessionEnd;
    this.#acceptor = new Acceptor((socket) => this.#accept(socket), () => this.#config.listen, this.#logger);
    this.#http = this.#createHttpServer(options.config);
  }

  get config(): ListenerConfig {
    return this.#config;
  }

  /** A reload: timeouts apply at once; a new head size limit to new connections. */
  set config(config: ListenerConfig) {
    const old = this.#config;
    this.#config = config;
    if (old.maxHeadBytes !== config.maxHeadBytes) {
      // Connections already on the old server finish there; its timers stop once
      // they are gone.
      const previous = this.#http;
      this.#http = this.#createHttpServer(config);
      previous.close();
    }
    else applyTimeouts(this.#http, config);
    if (old.stickyTtlS !== config.stickyTtlS && this.#renewTimer !== null) {
      clearInterval(this.#renewTimer);
      this.#renewTimer = null;
      if (this.#pinned.size > 0) this.#startRenewing();
    }
  }

  get name(): string {
    return this.#config.name;
  }

  /** Open client connections (idle keep-alive ones included). */
  get active(): number {
    return this.#clients.size;
  }

  get address(): string {
    return this.#acceptor.address;
  }

  get port(): number {
    return this.#acceptor.port;
  }

  listen(): Promise<void> {
    return this.#acceptor.listen();
  }

  /**
   * Stop accepting. Idle keep-alive connections are closed now and busy ones after
   * their current response (`connection: close`), so a drain ends when the requests
   * in flight and the upgraded connections do.
   */
  stopAccepting(): Promise<void> {
    this.#closing = true;
    this.#http.closeIdleConnections();
    return this.#acceptor.stop();
  }

  closeAll(reason: string): void {
    // Stops node:http's connection-checking timer (the server never listened, so
    // close() has nothing else to do).
    this.#http.close();
    for (const exchange of [...this.exchanges]) exchange.close(reason);
    for (const session of [...this.sessions]) session.close(reason);
    for (const socket of [...this.#clients]) socket.destroy();
  }

  // ---------------------------------------------------------------- accept

  #accept(socket: net.Socket): void {
    const address = socket.remoteAddress;
    if (address === undefined || this.#closing) {
      socket.destroy();
      return;
    }
    const config = this.#config;
    const client = socket as ClientSocket;
    const info: ClientInfo = {
      address: sourceIpKey(address),
      port: socket.remotePort ?? 0,
      destAddress: socket.localAddress ?? '',
      destPort: socket.localPort ?? 0,
      agents: null,
      parser: null,
      headTimer: null,
      upgrading: null,
      waitingUpgrade: null,
      deferred: null,
      refused: false,
      lingerUntil: 0,
      exchanges: null,
    };
    client[kClient] = info;
    client[kListener] = this;
    this.#clients.add(socket);
    socket.on('close', onClientClose);
    socket.on('error', onClientSocketError);
    if (this.#clients.size > config.maxConnections) {
      this.#reject(info, 'refused', 'connection limit');
      socket.destroy();
      return;
    }
    if (config.acceptProxy !== 'off') {
      if (!cidrContains(config.trustedProxies, address)) {
        this.#reject(info, 'refused', 'untrusted PROXY sender');
        socket.destroy();
        return;
      }
      info.parser = new ProxyHeaderParser(config.acceptProxy);
      info.headTimer = setTimeout(onProxyHeaderTimeout, config.headTimeoutMs, socket);
      socket.on('data', onProxyHeaderData);
      socket.on('end', onProxyHeaderEnd);
      socket.resume();
      return;
    }
    this.#serve(socket);
  }

  /** Hand the connection to node:http (after any PROXY header). */
  #serve(socket: net.Socket): void {
    this.#http.emit('connection', socket);
    socket.resume();
  }

  onProxyHeaderChunk(socket: ClientSocket, chunk: Buffer): void {
    const info = socket[kClient]!;
    const parser = info.parser;
    if (parser === null) return;
    const result = parser.push(chunk);
    if (result.kind === 'more') return;
    this.#endProxyHeader(socket, info);
    if (result.kind === 'error') {
      this.#reject(info, 'bad_request', `bad PROXY header: ${result.reason}`);
      socket.destroy();
      return;
    }
    this.#proxied(info, result.header);
    // The bytes after the header are the start of the first request.
    if (result.rest.length > 0) socket.unshift(result.rest);
    this.#serve(socket);
  }

  onProxyHeaderIncomplete(socket: ClientSocket, timedOut: boolean): void {
    const info = socket[kClient]!;
    if (info.parser === null) return;
    const started = info.parser.started;
    this.#endProxyHeader(socket, info);
    if (timedOut) this.#reject(info, 'timeout', 'PROXY header timeout');
    else if (started) this.#reject(info, 'bad_request', 'truncated PROXY header');
    socket.destroy();
  }

  #endProxyHeader(socket: net.Socket, info: ClientInfo): void {
    socket.pause();
    socket.removeListener('data', onProxyHeaderData);
    socket.removeListener('end', onProxyHeaderEnd);
    info.parser = null;
    if (info.headTimer !== null) clearTimeout(info.headTimer);
    info.headTimer = null;
  }

  #proxied(info: ClientInfo, header: ProxyHeader): void {
    if (header.command !== 'proxy') return;
    info.address = sourceIpKey(header.sourceAddress);
    info.port = header.sourcePort;
    info.destAddress = header.destAddress;
    info.destPort = header.destPort;
  }

  onClientClosed(socket: ClientSocket): void {
    this.#clients.delete(socket);
    const info = socket[kClient];
    if (info === undefined) return;
    if (info.headTimer !== null) clearTimeout(info.headTimer);
    if (info.agents !== null) for (const agent of info.agents.values()) agent.destroy();
    // Responses still to come can never be written. A response pipelined behind
    // another one never got the socket, so node:http will not close it: end its
    // exchange here, or it would stay in flight (and on its upstream's load) for ever.
    if (info.exchanges !== null) for (const exchange of info.exchanges) exchange.onResClose();
  }

  // ---------------------------------------------------------------- node:http

  #createHttpServer(config: ListenerConfig): http.Server {
    const server = http.createServer({
      maxHeaderSize: config.maxHeadBytes,
      insecureHTTPParser: false,
      // Bodies may take as long as they take (a large upload); silence is what the
      // idle timeout is for.
      requestTimeout: 0,
      headersTimeout: config.headTimeoutMs,
      // node:http checks head deadlines on this tick: keep the overshoot small.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.headTimeoutMs / 10))),
    });
    applyTimeouts(server, config);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => this.#onUpgrade(req, socket, head));
    server.on('connect', (req: IncomingMessage, socket: net.Socket, head: Buffer) => this.#onUpgrade(req, socket, head));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => this.#onClientError(err, socket));
    // Idle: node:http destroys the socket (no 'timeout' listener needed).
    // This server never listens (our net.Server accepts), but node:http starts its
    // connection tracking, which enforces headersTimeout and serves
    // closeIdleConnections(), on 'listening'.
    server.emit('listening');
    return server;
  }

  #onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    const info = (socket as ClientSocket)[kClient];
    if (info !== undefined && info.lingerUntil > 0) {
      // Answered already: node:http reports each chunk that follows as the same error.
      if (performance.now() >= info.lingerUntil) socket.destroy();
      else info.headTimer?.refresh();
      return;
    }
    // An answer is already waiting its turn: node:http reports each chunk that follows.
    if (info !== undefined && info.deferred !== null) return;
    const code = err.code ?? '';
    if (code === 'HPE_CLOSED_CONNECTION') {
      // Bytes after a request that closes the connection (Connection: close,
      // HTTP/1.0): that request was routed and is being answered, and node:http
      // closes once it is. What follows is dropped, unanswered (RFC 9112 9.6).
      return;
    }
    let status = 400;
    let outcome: Outcome = 'bad_request';
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      outcome = 'timeout';
    } else if (code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
    } else if (code === 'ECONNRESET' || code === 'EPIPE' || !code.startsWith('HPE_')) {
      // The client went away: nobody to answer.
      socket.destroy();
      return;
    }
    if (info !== undefined) this.#reject(info, outcome, `${status}: ${code} ${err.message}`);
    const answer = errorResponse(status, status === 408 ? 'request head not received in time' : status === 431 ? 'request head too large' : 'malformed request');
    if (info !== undefined && this.#deferBehindRouted(socket as ClientSocket, info, answer)) return;
    // A response already under way on this connection cannot be followed by ours.
    const busy = (socket as net.Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && (busy === undefined || busy === null || !busy.headersSent)) {
      this.#answerAndClose(socket, info, answer, status === 408);
    } else {
      socket.destroy();
    }
  }

  /**
   * A bad request behind requests already routed on this connection: those are
   * answered first, then `answer`, then the close (responses stay in order, and a
   * request that ran is never answered with an error). A request whose body broke
   * off cannot be answered: its upstream request is aborted. A response node:http
   * makes itself is waited for too (`refused`: the refused request's own, never
   * written). False when nothing is to be written before `answer`.
   */
  #deferBehindRouted(socket: ClientSocket, info: ClientInfo, answer: Buffer, refused: ServerResponse | null = null): boolean {
    const inFlight = info.exchanges;
    let waiting = false;
    if (inFlight !== null) {
      for (const exchange of inFlight) {
        if (!exchange.req.complete) exchange.onClientAborted();
        else if (!exchange.aborted) waiting = true;
      }
    }
    const own = ownResponse(socket, info, refused);
    if (!waiting && own === null) return false;
    info.deferred = answer;
    socket.pause();
    // After node:http's own 'finish' work (it closes the connection after a 400 of its own).
    if (own !== null) own.once('finish', () => setImmediate(() => this.#afterExchange(socket, info)));
    return true;
  }

  /** Write tether's own answer and close: at once (`now`), or after a lingering close. */
  #answerAndClose(socket: net.Socket, info: ClientInfo | undefined, answer: Buffer, now: boolean): void {
    socket.end(answer);
    // A client too slow to send a head is let go at once, as is one that has closed its side.
    if (now || info === undefined || socket.readableEnded) socket.destroySoon();
    else {
      // Nothing parses this socket any more: what follows is read and dropped while lingering.
      socket.resume();
      this.#linger(socket, info);
    }
  }

  /**
   * Lingering close (nginx's lingering_close, for the same reason): a client may
   * still be sending the rest of a bad request when its answer goes out. Closed at
   * once, the socket would meet those bytes with a reset, and a client whose write
   * fails on it (EPIPE) drops the answer unread. So after our FIN (the socket is
   * half-open) the rest is read and dropped until the client closes, is quiet for
   * LINGER_QUIET_MS, or LINGER_MAX_MS have passed.
   */
  #linger(socket: net.Socket, info: ClientInfo): void {
    info.lingerUntil = performance.now() + LINGER_MAX_MS;
    info.headTimer = setTimeout(destroySocket, LINGER_QUIET_MS, socket);
    socket.once('end', onLingerEnd);
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const info = (req.socket as ClientSocket)[kClient]!;
    // Behind a refusal: never routed, never answered; the connection closes after the refusal.
    if (info.refused) return;
    if (!forwardableVersion(req)) {
      // llhttp reads `HTTP/2.0` and a line with no version (HTTP/0.9); no upstream is
      // asked to read them. node:http keeps responses in order and closes after this one.
      this.#reject(info, 'bad_request', `400: HTTP/${req.httpVersion} request`);
      // llhttp may read on (a 0.9 line with `Connection: keep-alive`): nothing after it
      // is routed. The answer goes after those of the requests before it.
      info.refused = true;
      const answer = errorResponse(400, 'unsupported HTTP version');
      const socket = req.socket as ClientSocket;
      if (!this.#deferBehindRouted(socket, info, answer, res)) this.#answerAndClose(socket, info, answer, false);
      return;
    }
    const exchange = new Exchange(this, req, res, info.address, info.port);
    if (this.#closing) {
      // Draining: answer this one, then close the connection.
      res.shouldKeepAlive = false;
    }
    this.#route(exchange, info);
  }

  /** Take the exchange's key, decide its upstream and send it. */
  #route(exchange: Exchange, info: ClientInfo): void {
    this.exchanges.add(exchange);
    (info.exchanges ??= new Set()).add(exchange);
    const found = requestKey(this.#config.key, exchange.req, info.address);
    if (found !== null) {
      exchange.key = found.key;
      exchange.keySource = found.source;
    }
    this.#decide(exchange.key).then(
      (decision) => {
        exchange.via = decision.via;
        exchange.candidates = decision.candidates;
        this.#onStart?.(exchange);
        exchange.start();
      },
      (err: unknown) => {
        this.#logger.error({ err }, 'routing failed');
        exchange.close('routing failed');
      },
    );
  }

  /** Learned pin first (only when pins can exist), else the pool's hash order or p2c. */
  #decide(key: string | null): Promise<RouteDecision> {
    const config = this.#config;
    const max = config.retries + 1;
    if (key === null || config.learn.length === 0) return Promise.resolve(this.pool.route(key, max));
    return routeWithPins(this.pool, this.pins, key, max, config.stickyTtlS);
  }

  /**
   * A request with `Upgrade` (and `Connection: upgrade`), or a CONNECT: node:http has
   * handed the socket over. An upgrade request is routed and sent like any other; only
   * a 101 from its upstream makes the connection a tunnel (tunnel()). Until then the
   * client's later bytes wait unread.
   */
  #onUpgrade(req: IncomingMessage, socket: net.Socket, head: Buffer): void {
    const client = socket as ClientSocket;
    const info = client[kClient]!;
    // Behind a refusal node:http is still to write: the socket closes after it.
    if (info.refused) return;
    let refusal: Buffer | null = null;
    if (req.url === '') {
      // llhttp takes `CONNECT \r\n` (an empty target, HTTP/0.9), but no request line
      // written upstream can carry it: the upstream would read another target.
      this.#reject(info, 'bad_request', '400: empty request target');
      refusal = errorResponse(400, 'malformed request');
    } else if (req.method === 'CONNECT') {
      this.#reject(info, 'refused', '501: CONNECT');
      refusal = errorResponse(501, 'CONNECT is not supported: tether is not a forward proxy');
    } else if (!forwardableVersion(req)) {
      this.#reject(info, 'bad_request', `400: HTTP/${req.httpVersion} request`);
      refusal = errorResponse(400, 'unsupported HTTP version');
    } else if (hasBody(req)) {
      // node:http takes what follows the head as the new protocol's bytes; a body
      // there would be read as a request if the upstream refused.
      this.#reject(info, 'bad_request', '400: upgrade request with a body');
      refusal = errorResponse(400, 'an upgrade request cannot carry a body');
    }
    if (refusal !== null) {
      socket.setTimeout(0);
      if (!this.#deferBehindRouted(client, info, refusal)) this.#answerAndClose(socket, info, refusal, false);
      return;
    }
    // Pipelined behind requests still being answered, its answer must come after theirs.
    info.waitingUpgrade = { req, head };
    this.#startWaitingUpgrade(client, info);
  }

  /** Start the upgrade waiting on this connection once no response is still to be written before it. */
  #startWaitingUpgrade(socket: ClientSocket, info: ClientInfo): void {
    const waiting = info.waitingUpgrade;
    if (waiting === null) return;
    if (socket.destroyed || !socket.writable) {
      info.waitingUpgrade = null;
      return;
    }
    // Requests of ours in flight: ended() calls again.
    const inFlight = info.exchanges;
    if (inFlight !== null) for (const exchange of inFlight) if (!exchange.aborted) return;
    // A response node:http makes itself (417, 400 for a missing Host) may still be under way.
    const own = ownResponse(socket, info);
    if (own !== null) {
      // Rare: a closure is fine. After node:http's own 'finish' work (next response, or the close).
      own.once('finish', () => setImmediate(() => this.#startWaitingUpgrade(socket, info)));
      return;
    }
    info.waitingUpgrade = null;
    this.#startUpgrade(socket, info, waiting.req, waiting.head);
  }

  #startUpgrade(socket: ClientSocket, info: ClientInfo, req: IncomingMessage, head: Buffer): void {
    // Written like any response until the upstream says 101; node:http's own
    // response machinery (framing, Date, keep-alive) on a socket it no longer parses.
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = !this.#closing && keepAliveAsked(req);
    res.assignSocket(socket);
    res.on('finish', onUpgradeAnswered);
    // node:http's idle timer is still set on the socket, but its handler is gone.
    socket.on('timeout', onHandshakeTimeout);
    const exchange = new Exchange(this, req, res, info.address, info.port);
    exchange.upgradeHead = head;
    info.upgrading = exchange;
    this.#route(exchange, info);
  }

  /**
   * An upgrade request was answered with something other than 101: the connection
   * stays HTTP. node:http parses it again from the byte after the upgrade request
   * (requests there are routed, and refused, one by one), or it closes when the
   * answer said so.
   */
  onUpgradeAnswered(res: ServerResponse): void {
    const socket = res.socket as ClientSocket;
    const info = socket[kClient]!;
    const exchange = info.upgrading!;
    info.upgrading = null;
    socket.removeListener('timeout', onHandshakeTimeout);
    res.detachSocket(socket);
    // node:http emits a response's 'close' itself only for responses it made; this
    // one ends its exchange.
    res.emit('close');
    // A client that has closed its side (its FIN came with or after the upgrade
    // request) sends nothing more to parse: what it sent after the request is dropped.
    if (!res.shouldKeepAlive || this.#closing || socket.destroyed || !socket.writable || socket.readableEnded) {
      socket.destroySoon();
      return;
    }
    const rest = exchange.upgradeHead!;
    if (rest.length > 0) socket.unshift(rest);
    this.#serve(socket);
  }

  tunnel(exchange: Exchange, response: IncomingMessage, upstreamSocket: net.Socket, upstreamHead: Buffer): void {
    const client = exchange.client as ClientSocket;
    const info = client[kClient]!;
    info.upgrading = null;
    this.exchanges.delete(exchange);
    info.exchanges?.delete(exchange);
    client.removeListener('timeout', onHandshakeTimeout);
    // Now a raw tunnel: the session owns the socket's events and its idle timer.
    client.removeListener('error', onClientSocketError);
    exchange.res.detachSocket(client);
    const session = new Session(this, client, info.address, info.port, false, exchange.startedAt);
    session.key = exchange.key;
    session.keySource = exchange.keySource;
    session.via = exchange.via;
    session.candidates = exchange.candidates;
    session.attempt = exchange.attempt;
    session.fromClient = exchange.fromClient;
    session.toClient = exchange.toClient;
    const rest = exchange.upgradeHead!;
    if (rest.length > 0) session.pending = rest;
    this.sessions.add(session);
    if (session.via === 'learned' && session.key !== null) {
      this.#pinned.set(session, session.key);
      if (this.#renewTimer === null) this.#startRenewing();
    }
    const head = serializeResponseHead(response.statusCode!, response.statusMessage ?? '', response.rawHeaders);
    session.adopt(exchange.upstream!, upstreamSocket, upstreamHead.length > 0 ? Buffer.concat([head, upstreamHead]) : head);
  }

  /** A request on this connection was answered: what waited behind it may go now. */
  #afterExchange(socket: ClientSocket, info: ClientInfo): void {
    if (socket.destroyed || !socket.writable) return;
    const inFlight = info.exchanges;
    if (inFlight !== null) for (const exchange of inFlight) if (!exchange.aborted) return;
    if (info.deferred !== null) {
      const answer = info.deferred;
      info.deferred = null;
      this.#answerAndClose(socket, info, answer, false);
      return;
    }
    this.#startWaitingUpgrade(socket, info);
  }

  // ---------------------------------------------------------------- pins

  /** Renew the pins of open upgraded connections (contract, Routing 12). */
  #startRenewing(): void {
    const ttlS = this.#config.stickyTtlS;
    this.#renewTimer = setInterval(() => this.#renewPins(), Math.min(PIN_RENEW_MAX_MS, (ttlS * 1000) / 3));
    this.#renewTimer.unref();
  }

  #renewPins(): void {
    if (this.#pinned.size === 0) {
      clearInterval(this.#renewTimer!);
      this.#renewTimer = null;
      return;
    }
    const ttlS = this.#config.stickyTtlS;
    for (const key of new Set(this.#pinned.values())) void this.pins.touch(key, ttlS);
  }

  learn(_exchange: Exchange, upstream: Upstream, response: IncomingMessage): Promise<void> | null {
    const rules = this.#config.learn;
    if (rules.length === 0) return null;
    const keys = learnedKeys(rules, response.rawHeaders);
    if (keys.length === 0) return null;
    const ttlS = this.#config.stickyTtlS;
    if (this.#logger.isLevelEnabled('debug')) {
      this.#logger.debug({ upstream: upstream.name, keyHashes: keys.map(keyHashForLog) }, 'learned pins');
    }
    if (keys.length === 1) return this.pins.set(keys[0]!, upstream.name, ttlS);
    return Promise.all(keys.map((key) => this.pins.set(key, upstream.name, ttlS))).then(() => undefined);
  }

  // ---------------------------------------------------------------- ExchangeContext

  get connectTimeoutMs(): number {
    return this.#config.connectTimeoutMs;
  }

  upgradeConnector(client: net.Socket): UpgradeConnector | null {
    if (this.#config.proxyProtocol === 'off') return null;
    const info = (client as ClientSocket)[kClient]!;
    const header = buildProxyHeader(
      this.#config.proxyProtocol,
      { address: info.address, port: info.port },
      { address: info.destAddress, port: info.destPort },
    );
    return (options) => {
      const socket = net.connect(options as net.NetConnectOpts);
      socket.write(header);
      return socket;
    };
  }

  agentFor(client: net.Socket, upstream: Upstream): http.Agent {
    if (this.#config.proxyProtocol !== 'off') return this.#privateAgent(client as ClientSocket, upstream);
    let agent = this.#agents.get(upstream);
    if (agent === undefined) {
      agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' });
      this.#agents.set(upstream, agent);
    }
    return agent;
  }

  /**
   * With TETHER_PROXY_PROTOCOL each upstream connection starts with a header naming
   * one client, so it can serve only that client (HAProxy makes such connections
   * private too).
   */
  #privateAgent(client: ClientSocket, upstream: Upstream): http.Agent {
    const info = client[kClient]!;
    info.agents ??= new Map();
    let agent = info.agents.get(upstream);
    if (agent === undefined) {
      const header = buildProxyHeader(
        this.#config.proxyProtocol as 'v1' | 'v2',
        { address: info.address, port: info.port },
        { address: info.destAddress, port: info.destPort },
      );
      const made = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 16 });
      made.createConnection = (options: net.NetConnectOpts): net.Socket => {
        const socket = net.connect(options);
        socket.write(header);
        return socket;
      };
      info.agents.set(upstream, made);
      agent = made;
    }
    return agent;
  }

  acquire(exchange: Exchange, upstream: Upstream): void {
    this.pool.acquire(upstream);
    upstream.sessions.add(exchange);
  }

  release(exchange: Exchange, upstream: Upstream): void {
    this.pool.release(upstream);
    upstream.sessions.delete(exchange);
  }

  connectFailed(exchange: Exchange, upstream: Upstream, error: string): void {
    this.health.reportFailure(upstream.name, error);
    this.#logger.warn({ upstream: upstream.name, address: upstream.address, error }, 'upstream connect failed');
    this.#dropPinIfFirst(exchange.via, exchange.key, exchange.candidates, upstream);
  }

  connectSucceeded(upstream: Upstream): void {
    this.health.reportSuccess(upstream.name);
  }

  ended(exchange: Exchange): void {
    this.exchanges.delete(exchange);
    const client = exchange.client as ClientSocket;
    const info = client[kClient];
    if (info !== undefined) {
      info.exchanges?.delete(exchange);
      if (info.upgrading === exchange) info.upgrading = null;
      if (!client.destroyed && (info.deferred !== null || info.waitingUpgrade !== null)) this.#afterExchange(client, info);
    }
    if (!exchange.reason) exchange.reason = exchange.status > 0 ? 'answered' : 'client closed';
    settle(exchange);
    this.#count(exchange);
    this.#onEnd?.(exchange);
    if (this.#accessLog !== null) {
      const fields = accessFields(this.#config.name, exchange);
      fields.method = exchange.req.method;
      fields.status = exchange.status;
      this.#accessLog.info(fields);
    }
    if (this.#closing) setImmediate(closeIdle, this.#http);
  }

  // ---------------------------------------------------------------- ListenerContext (upgrades)

  onConnectFailed(session: Session, upstream: Upstream): void {
    this.#logger.warn({ upstream: upstream.name, address: upstream.address, error: session.lastError }, 'upstream connect failed');
    this.#dropPinIfFirst(session.via, session.key, session.candidates, upstream);
  }

  onSessionEnd(session: Session): void {
    this.sessions.delete(session);
    const key = this.#pinned.get(session);
    if (key !== undefined) {
      this.#pinned.delete(session);
      // The TTL runs from the last connection's close (contract, Routing 12).
      void this.pins.touch(key, this.#config.stickyTtlS);
    }
    settle(session);
    this.#count(session);
    this.#onEnd?.(session);
    if (this.#accessLog !== null) {
      const fields = accessFields(this.#config.name, session);
      fields.method = 'UPGRADE';
      this.#accessLog.info(fields);
    }
  }

  #count(record: RoutedRecord): void {
    const counters = this.counters;
    counters.outcomes[record.outcome]++;
    counters.fromClient += record.fromClient;
    counters.toClient += record.toClient;
  }

  /** A pin to an upstream that failed is dropped (contract, Routing 5). */
  #dropPinIfFirst(via: string, key: string | null, candidates: readonly Upstream[], failed: Upstream): void {
    if (via === 'learned' && key !== null && candidates[0] === failed) void this.pins.delete(key);
  }

  /** A connection turned away before any request was routed (counted, logged). */
  #reject(info: ClientInfo, outcome: Outcome, reason: string): void {
    const record: RoutedRecord = { via: 'hash', upstream: null, outcome, fromClient: 0, toClient: 0 };
    this.#count(record);
    this.#onEnd?.(record);
    this.#accessLog?.info({
      listener: this.#config.name,
      client: formatAddress(info.address, info.port),
      upstream: null,
      outcome,
      reason,
    });
  }
}

function applyTimeouts(server: http.Server, config: ListenerConfig): void {
  server.headersTimeout = config.headTimeoutMs;
  // Between requests, and while a body or response is under way: silence in both
  // directions for TETHER_IDLE_TIMEOUT_MS closes the connection, as in tcp mode.
  server.keepAliveTimeout = config.idleTimeoutMs;
  server.timeout = config.idleTimeoutMs;
}

/**
 * The response node:http is writing on this connection when it is one it made itself
 * (417, or 400 for a missing Host), not an exchange's; null when there is none.
 */
function ownResponse(socket: ClientSocket, info: ClientInfo, except: ServerResponse | null = null): ServerResponse | null {
  const busy = (socket as net.Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (busy === undefined || busy === null || busy === except) return null;
  if (info.exchanges !== null) for (const exchange of info.exchanges) if (exchange.res === busy) return null;
  return busy;
}

/** HTTP/1.0 and 1.1 are what tether forwards (llhttp also reads 0.9 and 2.0 lines). */
function forwardableVersion(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && (req.httpVersionMinor === 0 || req.httpVersionMinor === 1);
}

/** Whether the request head announces a body. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Whether the client asked to keep the connection (RFC 9112 9.3). */
function keepAliveAsked(req: IncomingMessage): boolean {
  const tokens = (req.headers.connection ?? '').toLowerCase().split(',');
  let close = false;
  let keepAlive = false;
  for (const token of tokens) {
    const t = token.trim();
    if (t === 'close') close = true;
    else if (t === 'keep-alive') keepAlive = true;
  }
  if (close) return false;
  return req.httpVersionMinor >= 1 || keepAlive;
}

function onUpgradeAnswered(this: ServerResponse): void {
  listenerOf(this.socket!).onUpgradeAnswered(this);
}

/** Silence while an upgrade request waits for its answer (TETHER_IDLE_TIMEOUT_MS). */
function onHandshakeTimeout(this: net.Socket): void {
  this.destroy();
}

function closeIdle(server: http.Server): void {
  server.closeIdleConnections();
}

function listenerOf(socket: net.Socket): HttpListener {
  return (socket as ClientSocket)[kListener]!;
}

function onClientClose(this: net.Socket): void {
  listenerOf(this).onClientClosed(this as ClientSocket);
}

function onClientSocketError(): void {
  // 'close' follows; node:http reports parse errors through 'clientError'.
}

function onProxyHeaderData(this: net.Socket, chunk: Buffer): void {
  listenerOf(this).onProxyHeaderChunk(this as ClientSocket, chunk);
}

function onProxyHeaderEnd(this: net.Socket): void {
  listenerOf(this).onProxyHeaderIncomplete(this as ClientSocket, false);
}

function destroySocket(socket: net.Socket): void {
  socket.destroy();
}

/** The client closed its side while we lingered: nothing more to drop. */
function onLingerEnd(this: net.Socket): void {
  this.destroy();
}

function onProxyHeaderTimeout(socket: net.Socket): void {
  listenerOf(socket).onProxyHeaderIncomplete(socket as ClientSocket, true);
}
