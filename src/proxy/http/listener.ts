import type { Logger } from 'pino';
import type { ListenerConfig } from '../../config/types.js';
import { keyHashForLog } from '../../log.js';
import { cidrContains } from '../../net/cidr.js';
import { sourceIpKey } from '../../net/address.js';
import { learnedKeys } from '../../routing/learn.js';
import type { UpstreamPool } from '../../routing/pool.js';
import { learns, routeByCachedPin, routeWithPins, routeWithPinsNow } from '../../routing/router.js';
import type { RouteDecision } from '../../routing/types.js';
import { formatAddress, type Upstream } from '../../routing/upstream.js';
import { cachedPins, immediatePins } from '../../store/guard.js';
import type { CachedPins, ImmediatePins, PinStore } from '../../store/types.js';
import { accessFields } from '../access.js';
import { Acceptor } from '../acceptor.js';
import { Admission } from '../admission.js';
import type { HealthReporter, ListenerContext, RoutedRecord } from '../context.js';
import { IdleSweeper } from '../idle.js';
import { ListenerBase, type ListenerOptions } from '../listener-base.js';
import { buildProxyHeader } from '../proxy-protocol/build.js';
import { Session } from '../session.js';
import type { Outcome } from '../types.js';
import { HttpConnection } from './connection.js';
import { ConnectionSweeper } from './deadlines.js';
import type { Exchange } from './exchange.js';
import { RequestHead, ResponseHead } from './h1/index.js';
import { readProxyHeader } from './inbound-proxy.js';
import { PinRenewal } from '../pin-renewal.js';
import { onHttpClientRead } from './client-reads.js';
import type { ClientAddress, ClientConnection, ClientSocket, ConnectionHost } from './types.js';
import { UpstreamSockets, type UpstreamSocket } from './upstream-sockets.js';

export type HttpListenerOptions = ListenerOptions<RoutedRecord>;

const NO_KEYS: readonly string[] = [];

/** Response heads from upstreams may be larger than what clients are allowed. */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
/** Parsers kept for reuse between requests; more are left to the garbage collector. */
const FREE_PARSERS = 256;

/**
 * http mode (TETHER_MODE=http): each client connection (connection.ts) reads requests
 * as bytes, routes each on its own key, and relays it and its response through
 * upstream connections kept alive and shared (upstream-sockets.ts). Upgraded
 * (WebSocket) connections become a Session, as in tcp mode, once their upstream has
 * answered 101. This file: accepting, the PROXY header, routing decisions, learning,
 * counting, draining.
 */
export class HttpListener extends ListenerBase implements ListenerContext<Session>, ConnectionHost {
  #config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  readonly pins: PinStore;
  /** The same pins when they answer at once (memory store): no promise per request. */
  readonly #immediatePins: ImmediatePins | null;
  /** Otherwise, this process's copy of them (TETHER_WORKERS with the memory store). */
  readonly #cachedPins: CachedPins | null;
  /** Upgraded connections, piped raw. */
  readonly sessions = new Set<Session>();

  /**
   * Units open now, whose byte counts grow as bytes pass (admin/live-bytes.ts):
   * upgraded connections, and the request under way on each client connection (a
   * long upload shows its bytes while it runs), once connected: before that its
   * upstream may still change, and a sum must only grow. An exchange leaves
   * `exchange` in the same step that counts it as ended, so none is counted twice.
   */
  *openUnits(): Iterable<RoutedRecord> {
    yield* this.sessions;
    for (const connection of this.#connections) {
      const exchange = connection.exchange;
      if (exchange !== null && exchange.connected) yield exchange;
    }
  }
  readonly idle = new IdleSweeper(this.sessions, () => this.#config.idleTimeoutMs);
  readonly upstreamSockets = new UpstreamSockets();
  protected readonly acceptor: Acceptor;
  readonly #admission: Admission<ClientSocket>;
  /** Client connections being served (not those handed to a tunnel). */
  readonly #connections = new Set<HttpConnection>();
  readonly #deadlines: ConnectionSweeper;
  readonly #logger: Logger;
  readonly #accessLog: Logger | null;
  readonly #onStart: ((routed: RoutedRecord) => void) | undefined;
  readonly #onEnd: ((routed: RoutedRecord) => void) | undefined;
  readonly #renewal: PinRenewal;
  readonly #requestParsers: RequestHead[] = [];
  readonly #responseParsers: ResponseHead[] = [];
  #closing = false;
  #inFlight = 0;

  constructor(options: HttpListenerOptions) {
    super();
    this.#config = options.config;
    this.pool = options.pool;
    this.health = options.health;
    this.pins = options.pins;
    this.#immediatePins = immediatePins(options.pins);
    this.#cachedPins = this.#immediatePins === null ? cachedPins(options.pins) : null;
    this.#logger = options.logger;
    this.#accessLog = options.accessLog;
    this.#onStart = options.onSessionStart;
    this.#onEnd = options.onSessionEnd;
    this.#renewal = new PinRenewal(options.pins, () => this.#config.stickyTtlS);
    this.#deadlines = new ConnectionSweeper(this.#connections, () => this.#config);
    this.acceptor = new Acceptor({
      configured: () => this.#config.listen,
      logger: this.#logger,
      onRead: onHttpClientRead,
      onAccepted: (socket, address, port) => this.#admission.offer(socket, address, port),
    });
    this.#admission = new Admission<ClientSocket>(
      {
        active: () => this.active,
        maxConnections: () => this.#config.maxConnections,
        admitted: (socket, address, port) => this.#admitted(socket, address, port),
        refused: (socket, address, port) => {
          this.reject({ address, port }, 'refused', 'connection limit');
          socket.destroy();
        },
      },
      options.lease ?? null,
    );
  }

  get config(): ListenerConfig {
    return this.#config;
  }

  /** A reload: timeouts apply at the next sweep; a new head size limit to heads read from now. */
  set config(config: ListenerConfig) {
    const old = this.#config;
    this.#config = config;
    if (old.maxHeadBytes !== config.maxHeadBytes) this.#requestParsers.length = 0;
    if (old.stickyTtlS !== config.stickyTtlS) this.#renewal.ttlChanged();
    this.#deadlines.reschedule();
  }

  /** Requests read and not yet ended. */
  get inFlight(): number {
    return this.#inFlight;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Open client connections (idle keep-alive ones and tunnels included). */
  get active(): number {
    return this.#connections.size + this.sessions.size;
  }

  /**
   * Stop accepting. Idle keep-alive connections are closed now and busy ones after
   * their current response (`Connection: close`), so a drain ends when the requests
   * in flight and the upgraded connections do.
   */
  stopAccepting(): Promise<void> {
    this.#closing = true;
    for (const connection of [...this.#connections]) if (connection.idle) connection.close('draining');
    this.#admission.close();
    return this.acceptor.stop();
  }

  closeAll(reason: string): void {
    for (const connection of [...this.#connections]) connection.close(reason);
    for (const session of [...this.sessions]) session.close(reason);
    this.upstreamSockets.closeAll();
    this.#deadlines.stop();
  }

  // ---------------------------------------------------------------- accept

  #connection(socket: ClientSocket, address: string, port: number): HttpConnection {
    const connection = new HttpConnection(this, socket, sourceIpKey(address), port);
    this.#connections.add(connection);
    this.#deadlines.track();
    return connection;
  }

  #admitted(socket: ClientSocket, address: string, port: number): void {
    const config = this.#config;
    if (config.acceptProxy !== 'off' && !cidrContains(config.trustedProxies, address)) {
      this.reject({ address, port }, 'refused', 'untrusted PROXY sender');
      socket.destroy();
      return;
    }
    const connection = this.#connection(socket, address, port);
    if (config.acceptProxy !== 'off') readProxyHeader(this, connection, config);
    else connection.serve();
  }

  released(connection: HttpConnection): void {
    this.#connections.delete(connection);
    if (this.#connections.size === 0) this.#deadlines.stop();
  }

  // ---------------------------------------------------------------- parsers

  takeRequestParser(): RequestHead {
    return this.#requestParsers.pop() ?? new RequestHead(this.#config.maxHeadBytes);
  }

  giveRequestParser(parser: RequestHead): void {
    if (parser.maxHeadBytes === this.#config.maxHeadBytes && this.#requestParsers.length < FREE_PARSERS) this.#requestParsers.push(parser);
  }

  takeResponseParser(): ResponseHead {
    return this.#responseParsers.pop() ?? new ResponseHead(MAX_RESPONSE_HEAD_BYTES);
  }

  giveResponseParser(parser: ResponseHead): void {
    if (this.#responseParsers.length < FREE_PARSERS) this.#responseParsers.push(parser);
  }

  // ---------------------------------------------------------------- routing and learning

  /** Learned pin first (only when pins can exist: learn rules, TETHER_STICK), else the pool's hash order or p2c. */
  decide(key: string | null): RouteDecision | Promise<RouteDecision> {
    const config = this.#config;
    const max = config.retries + 1;
    if (key === null || !learns(config)) return this.pool.route(key, max);
    const now = this.#immediatePins;
    if (now !== null) return routeWithPinsNow(this.pool, now, key, max, config.stickyTtlS);
    const cache = this.#cachedPins;
    if (cache !== null) {
      const decision = routeByCachedPin(this.pool, cache, key, max, config.stickyTtlS);
      if (decision !== null) return decision;
    }
    return routeWithPins(this.pool, this.pins, key, max, config.stickyTtlS);
  }

  /**
   * Pins a response teaches: the keys its learn rules find, and with TETHER_STICK the
   * request's own key where it was not already pinned to this upstream.
   */
  learn(exchange: Exchange, upstream: Upstream, head: ResponseHead): Promise<void> | null {
    const config = this.#config;
    const learned = config.learn.length === 0 ? NO_KEYS : learnedKeys(config.learn, head);
    const key = exchange.key;
    const stick = config.stick && key !== null && (exchange.via !== 'learned' || exchange.candidates[0] !== upstream);
    const keys = stick ? [...learned, key] : learned;
    if (keys.length === 0) return null;
    const ttlS = config.stickyTtlS;
    if (this.#logger.isLevelEnabled('debug')) {
      this.#logger.debug({ upstream: upstream.name, keyHashes: keys.map(keyHashForLog) }, 'learned pins');
    }
    const now = this.#immediatePins;
    if (now !== null) {
      for (const k of keys) now.setNow(k, upstream.name, ttlS);
      return null;
    }
    // Pins already held as taught (the common case: every response of a session
    // teaches its pin again) are renewed, not written again: no wait, no round trip.
    const cache = this.#cachedPins;
    if (cache !== null && allCachedOn(cache, keys, upstream.name)) {
      for (const k of keys) cache.renew(k, ttlS);
      return null;
    }
    if (keys.length === 1) return this.pins.set(keys[0]!, upstream.name, ttlS);
    return Promise.all(keys.map((k) => this.pins.set(k, upstream.name, ttlS))).then(() => undefined);
  }

  proxyHeaderFor(connection: ClientConnection): Buffer | null {
    const version = this.#config.proxyProtocol;
    if (version === 'off') return null;
    return buildProxyHeader(version, { address: connection.address, port: connection.port }, { address: connection.destAddress, port: connection.destPort });
  }

  begun(): void {
    this.#inFlight++;
  }

  started(exchange: Exchange): void {
    this.#onStart?.(exchange);
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
    this.#inFlight--;
    this.#ended(exchange, exchange.method, exchange.status > 0 ? exchange.status : undefined);
    if (this.#closing) setImmediate(closeIdle, this.#connections);
  }

  // ---------------------------------------------------------------- upgraded connections

  tunnel(exchange: Exchange, client: ClientSocket, upstreamSocket: UpstreamSocket, toClient: Buffer, toUpstream: Buffer | null): void {
    this.#inFlight--;
    // The client socket as it is (a handle, or a net.Socket): its reads go to the Session
    // from now on (client-reads.ts), and a FIN it read already is passed on once connected.
    const session = new Session(this, client, exchange.clientAddress, exchange.clientPort, exchange.startedAt);
    session.key = exchange.key;
    session.keySource = exchange.keySource;
    session.via = exchange.via;
    session.candidates = exchange.candidates;
    session.attempt = exchange.attempt;
    session.fromClient = exchange.fromClient;
    session.toClient = exchange.toClient;
    if (toUpstream !== null) session.pending = toUpstream;
    this.sessions.add(session);
    // A pinned upgrade (learned, or pinned just now by TETHER_STICK) keeps its pin alive while open.
    if ((session.via === 'learned' || this.#config.stick) && session.key !== null) this.#renewal.hold(session, session.key);
    session.adopt(exchange.upstream!, upstreamSocket, toClient);
  }

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
  reject(client: ClientAddress, outcome: Outcome, reason: string): void {
    const record: RoutedRecord = { via: 'hash', upstream: null, outcome, fromClient: 0, toClient: 0 };
    this.count(record);
    this.#onEnd?.(record);
    this.#accessLog?.info({ listener: this.#config.name, client: formatAddress(client.address, client.port), upstream: null, outcome, reason });
  }
}

/** Draining: connections between requests close as soon as they are. */
function closeIdle(connections: Set<HttpConnection>): void {
  for (const connection of [...connections]) if (connection.idle) connection.close('draining');
}

function allCachedOn(cache: CachedPins, keys: readonly string[], upstream: string): boolean {
  for (const k of keys) if (cache.cached(k) !== upstream) return false;
  return true;
}
