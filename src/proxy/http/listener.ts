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
import { Exchange, type ExchangeContext } from './exchange.js';
import { errorResponse, serializeRequestHead } from './headers.js';
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
  upgraded: boolean;
  /** After a bad head was answered: until when (performance.now()) the rest is read and dropped; 0 before. */
  lingerUntil: number;
  /** Its requests in flight (made with the first request). */
  exchanges: Set<Exchange> | null;
}

const kClient = Symbol('tether.client');
const kListener = Symbol('tether.listener');
type ClientSocket = net.Socket & { [kClient]?: ClientInfo; [kListener]?: HttpListener };

/** The answer to an upgrade no upstream accepted: made once, written as it is. */
const UPGRADE_UNAVAILABLE = errorResponse(503, 'no upstream answered');

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
 * and pipes upgraded (WebSocket) connections raw through a Session.
 *
 * Bad input gets its status and a close: 400 malformed or ambiguous head, 408 head
 * not complete within TETHER_HEAD_TIMEOUT_MS, 431 head over TETHER_MAX_HEAD_BYTES,
 * 502 upstream closed before answering, 503 no upstream.
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
      upgraded: false,
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
    const code = err.code ?? '';
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
    // A response already under way on this connection cannot be followed by ours.
    const busy = (socket as net.Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && (busy === undefined || busy === null || !busy.headersSent)) {
      socket.end(errorResponse(status, status === 408 ? 'request head not received in time' : status === 431 ? 'request head too large' : 'malformed request'));
      // A client too slow to send a head is let go at once, as is one that has closed its side.
      if (status === 408 || info === undefined || socket.readableEnded) socket.destroySoon();
      else this.#linger(socket, info);
    } else {
      socket.destroy();
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
    const exchange = new Exchange(this, req, res, info.address, info.port);
    this.exchanges.add(exchange);
    (info.exchanges ??= new Set()).add(exchange);
    if (this.#closing) {
      // Draining: answer this one, then close the connection.
      res.shouldKeepAlive = false;
    }
    const found = requestKey(this.#config.key, req, info.address);
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

  #onUpgrade(req: IncomingMessage, socket: net.Socket, head: Buffer): void {
    const client = socket as ClientSocket;
    const info = client[kClient]!;
    if (req.url === '') {
      // llhttp takes `CONNECT \r\n` (an empty target, HTTP/0.9), but no request line
      // written upstream can carry it: the upstream would read another target.
      this.#reject(info, 'bad_request', '400: empty request target');
      socket.setTimeout(0);
      socket.end(errorResponse(400, 'malformed request'));
      // Nothing parses this socket any more: drop what follows while lingering.
      socket.resume();
      this.#linger(socket, info);
      return;
    }
    info.upgraded = true;
    // Now a raw tunnel: the session owns the socket's events and its idle timer.
    socket.setTimeout(0);
    socket.removeListener('error', onClientSocketError);
    const session = new Session(this, socket, info.address, info.port);
    this.sessions.add(session);
    const found = requestKey(this.#config.key, req, info.address);
    if (found !== null) {
      session.key = found.key;
      session.keySource = found.source;
    }
    const headBuf = serializeRequestHead(req.method!, req.url!, req.httpVersion, req.rawHeaders);
    session.pending = head.length > 0 ? Buffer.concat([headBuf, head]) : headBuf;
    session.failureResponse = UPGRADE_UNAVAILABLE;
    const config = this.#config;
    if (config.proxyProtocol !== 'off') {
      session.preamble = buildProxyHeader(
        config.proxyProtocol,
        { address: info.address, port: info.port },
        { address: info.destAddress, port: info.destPort },
      );
    }
    this.#decide(session.key).then(
      (decision) => {
        session.via = decision.via;
        session.candidates = decision.candidates;
        if (decision.via === 'learned') {
          this.#pinned.set(session, session.key!);
          if (this.#renewTimer === null) this.#startRenewing();
        }
        this.#onStart?.(session);
        session.connect();
      },
      (err: unknown) => {
        this.#logger.error({ err }, 'routing failed');
        session.close('routing failed');
      },
    );
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
    (exchange.client as ClientSocket)[kClient]?.exchanges?.delete(exchange);
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
