import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../../config/types.js';
import { keyHashForLog } from '../../log.js';
import { cidrContains } from '../../net/cidr.js';
import { requestKey } from '../../routing/keys.js';
import { learnedKeys } from '../../routing/learn.js';
import type { UpstreamPool } from '../../routing/pool.js';
import { routeWithPins } from '../../routing/router.js';
import type { RouteDecision } from '../../routing/types.js';
import { formatAddress, type Upstream } from '../../routing/upstream.js';
import type { PinStore } from '../../store/types.js';
import { accessFields } from '../access.js';
import { Acceptor } from '../acceptor.js';
import type { HealthReporter, ListenerContext, RoutedRecord } from '../context.js';
import { IdleSweeper } from '../idle.js';
import { ListenerBase } from '../listener-base.js';
import type { Session } from '../session.js';
import type { Outcome } from '../types.js';
import { adoptClient, clientOf, noneInFlight, type ClientInfo, type ClientOwner, type ClientSocket } from './client.js';
import { Exchange, type ExchangeContext, type UpgradeConnector } from './exchange.js';
import { errorResponse } from './headers.js';
import { PinRenewal } from './pin-renewal.js';
import { answerAndClose, clientError, deferBehindRouted } from './refusals.js';
import { proxyHeaderChunk, proxyHeaderIncomplete, readProxyHeader } from './inbound-proxy.js';
import { forwardableVersion } from './request-checks.js';
import { UpstreamAgents } from './upstream-agents.js';
import { Upgrades, type UpgradeHost } from './upgrades.js';

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

/**
 * http mode (TETHER_MODE=http): reads HTTP/1.x request heads with node:http (llhttp:
 * the parser Node itself trusts, strict about ambiguous framing) to find each
 * request's key, routes every request on its own (exchange.ts), learns pins from
 * response heads, and pipes upgraded (WebSocket) connections raw through a Session
 * once their upstream has answered 101 (upgrades.ts).
 *
 * Bad input gets its status and a close: 400 malformed or ambiguous head, or a
 * version other than HTTP/1.0 and 1.1; 408 head not complete within
 * TETHER_HEAD_TIMEOUT_MS; 431 head over TETHER_MAX_HEAD_BYTES; 501 CONNECT (tether
 * is no forward proxy); 502 upstream closed before answering; 503 no upstream. A
 * request is refused before it is routed or answered after, never both: bytes after
 * a request that closes the connection are dropped (RFC 9112 9.6), and a bad
 * request behind routed ones is answered after theirs (refusals.ts).
 */
export class HttpListener extends ListenerBase implements ListenerContext<Session>, ExchangeContext, ClientOwner, UpgradeHost {
  #config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  readonly pins: PinStore;
  /** Upgraded connections, piped raw. */
  readonly sessions = new Set<Session>();
  readonly idle = new IdleSweeper(this.sessions, () => this.#config.idleTimeoutMs);
  /** Requests in flight. */
  readonly exchanges = new Set<Exchange>();
  readonly context = this;
  protected readonly acceptor: Acceptor;
  readonly #clients = new Set<net.Socket>();
  #http: http.Server;
  readonly #logger: Logger;
  readonly #accessLog: Logger | null;
  readonly #onStart: ((routed: RoutedRecord) => void) | undefined;
  readonly #onEnd: ((routed: RoutedRecord) => void) | undefined;
  readonly #agents = new UpstreamAgents(() => this.#config);
  readonly #renewal: PinRenewal;
  readonly #upgrades = new Upgrades(this);
  #closing = false;

  constructor(options: HttpListenerOptions) {
    super();
    this.#config = options.config;
    this.pool = options.pool;
    this.health = options.health;
    this.pins = options.pins;
    this.#logger = options.logger;
    this.#accessLog = options.accessLog;
    this.#onStart = options.onSessionStart;
    this.#onEnd = options.onSessionEnd;
    this.#renewal = new PinRenewal(options.pins, () => this.#config.stickyTtlS);
    this.acceptor = new Acceptor((socket) => this.#accept(socket), () => this.#config.listen, this.#logger);
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
    } else applyTimeouts(this.#http, config);
    if (old.stickyTtlS !== config.stickyTtlS) this.#renewal.ttlChanged();
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Open client connections (idle keep-alive ones included). */
  get active(): number {
    return this.#clients.size;
  }

  /**
   * Stop accepting. Idle keep-alive connections are closed now and busy ones after
   * their current response (`connection: close`), so a drain ends when the requests
   * in flight and the upgraded connections do.
   */
  stopAccepting(): Promise<void> {
    this.#closing = true;
    this.#http.closeIdleConnections();
    return this.acceptor.stop();
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
    const info = adoptClient(socket, address, this);
    this.#clients.add(socket);
    socket.on('close', onClientClose);
    socket.on('error', onClientSocketError);
    if (this.#clients.size > config.maxConnections) {
      this.reject(info, 'refused', 'connection limit');
      socket.destroy();
      return;
    }
    if (config.acceptProxy !== 'off') {
      if (!cidrContains(config.trustedProxies, address)) {
        this.reject(info, 'refused', 'untrusted PROXY sender');
        socket.destroy();
        return;
      }
      readProxyHeader(socket, info, config);
      return;
    }
    this.serve(socket);
  }

  /** Hand the connection to node:http (after any PROXY header, or again after a refused upgrade). */
  serve(socket: net.Socket): void {
    this.#http.emit('connection', socket);
    socket.resume();
  }

  onProxyHeaderChunk(socket: ClientSocket, chunk: Buffer): void {
    proxyHeaderChunk(this, socket, chunk);
  }

  onProxyHeaderIncomplete(socket: ClientSocket, timedOut: boolean): void {
    proxyHeaderIncomplete(this, socket, timedOut);
  }

  onClientClosed(socket: ClientSocket): void {
    this.#clients.delete(socket);
    const info = clientOf(socket);
    if (info === undefined) return;
    info.prelude?.stop();
    if (info.lingerTimer !== null) clearTimeout(info.lingerTimer);
    UpstreamAgents.release(info);
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
    const upgrade = (req: IncomingMessage, socket: net.Socket, head: Buffer): void => this.#upgrades.received(req, socket as ClientSocket, head);
    server.on('upgrade', upgrade);
    server.on('connect', upgrade);
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => clientError(this, err, socket));
    // Idle: node:http destroys the socket (no 'timeout' listener needed).
    // This server never listens (our net.Server accepts), but node:http starts its
    // connection tracking, which enforces headersTimeout and serves
    // closeIdleConnections(), on 'listening'.
    server.emit('listening');
    return server;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as ClientSocket;
    const info = clientOf(socket)!;
    // Behind a refusal: never routed, never answered; the connection closes after the refusal.
    if (info.refused) return;
    if (!forwardableVersion(req)) {
      // llhttp reads `HTTP/2.0` and a line with no version (HTTP/0.9), and may read on
      // after it (a 0.9 line with `Connection: keep-alive`): nothing from here is routed.
      this.reject(info, 'bad_request', `400: HTTP/${req.httpVersion} request`);
      info.refused = true;
      const answer = errorResponse(400, 'unsupported HTTP version');
      if (!deferBehindRouted(socket, info, answer, res, () => this.afterExchange(socket, info))) answerAndClose(socket, info, answer, false);
      return;
    }
    const exchange = new Exchange(this, req, res, info.address, info.port);
    // Draining: answer this one, then close the connection.
    if (this.#closing) res.shouldKeepAlive = false;
    this.route(exchange, info);
  }

  route(exchange: Exchange, info: ClientInfo): void {
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

  // ---------------------------------------------------------------- what waits behind a request

  onUpgradeAnswered(res: ServerResponse): void {
    this.#upgrades.answered(res);
  }

  tunnel(exchange: Exchange, response: IncomingMessage, upstreamSocket: net.Socket, upstreamHead: Buffer): void {
    this.#upgrades.tunnel(exchange, response, upstreamSocket, upstreamHead);
  }

  tunnelOpened(session: Session, from: Exchange): void {
    this.exchanges.delete(from);
    this.sessions.add(session);
    if (session.via === 'learned' && session.key !== null) this.#renewal.hold(session, session.key);
  }

  afterExchange(socket: ClientSocket, info: ClientInfo): void {
    if (socket.destroyed || !socket.writable || !noneInFlight(info)) return;
    const answer = info.deferred;
    if (answer === null) return this.#upgrades.startWaiting(socket, info);
    info.deferred = null;
    answerAndClose(socket, info, answer, false);
  }

  // ---------------------------------------------------------------- ExchangeContext

  get connectTimeoutMs(): number {
    return this.#config.connectTimeoutMs;
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

  agentFor(client: net.Socket, upstream: Upstream): http.Agent {
    return this.#agents.agentFor(clientOf(client)!, upstream);
  }

  upgradeConnector(client: net.Socket): UpgradeConnector | null {
    return this.#agents.upgradeConnector(clientOf(client)!);
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
    const info = clientOf(client);
    if (info !== undefined) {
      info.exchanges?.delete(exchange);
      if (info.upgrading === exchange) info.upgrading = null;
      if (!client.destroyed && (info.deferred !== null || info.waitingUpgrade !== null)) this.afterExchange(client, info);
    }
    if (!exchange.reason) exchange.reason = exchange.status > 0 ? 'answered' : 'client closed';
    this.#ended(exchange, exchange.req.method, exchange.status);
    if (this.#closing) setImmediate(closeIdle, this.#http);
  }

  // ---------------------------------------------------------------- ListenerContext (upgraded connections)

  onConnectFailed(session: Session, upstream: Upstream): void {
    this.#logger.warn({ upstream: upstream.name, address: upstream.address, error: session.lastError }, 'upstream connect failed');
    this.#dropPinIfFirst(session.via, session.key, session.candidates, upstream);
  }

  onSessionEnd(session: Session): void {
    this.sessions.delete(session);
    this.#renewal.release(session);
    this.#ended(session, 'UPGRADE', undefined);
  }

  #ended(record: Exchange | Session, method: string | undefined, status: number | undefined): void {
    this.count(record);
    this.#onEnd?.(record);
    if (this.#accessLog === null) return;
    const fields = accessFields(this.#config.name, record);
    fields.method = method;
    if (status !== undefined) fields.status = status;
    this.#accessLog.info(fields);
  }

  /** A pin to an upstream that failed is dropped (docs/routing.md, rule 5). */
  #dropPinIfFirst(via: string, key: string | null, candidates: readonly Upstream[], failed: Upstream): void {
    if (via === 'learned' && key !== null && candidates[0] === failed) void this.pins.delete(key);
  }

  /** A connection or request turned away before it was routed (counted, logged). */
  reject(info: ClientInfo, outcome: Outcome, reason: string): void {
    const record: RoutedRecord = { via: 'hash', upstream: null, outcome, fromClient: 0, toClient: 0 };
    this.count(record);
    this.#onEnd?.(record);
    this.#accessLog?.info({ listener: this.#config.name, client: formatAddress(info.address, info.port), upstream: null, outcome, reason });
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


function onClientClose(this: net.Socket): void {
  clientOf(this)!.owner.onClientClosed(this);
}

function onClientSocketError(): void {
  // 'close' follows; node:http reports parse errors through 'clientError'.
}



