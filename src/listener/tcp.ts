import net from 'node:net';
import type { Logger } from 'pino';
import { cidrContains } from '../config/parse.js';
import type { ListenerConfig } from '../config/types.js';
import { ListenError } from '../errors.js';
import { keyHashForLog } from '../log.js';
import type { UpstreamPool } from '../pool/pool.js';
import { formatAddress, type Upstream } from '../pool/upstream.js';
import { sourceIpKey } from './address.js';
import type { HealthReporter, ListenerContext } from './context.js';
import { buildProxyHeader, type ProxyHeader } from './proxy-protocol.js';
import { Session, type Outcome, type ProxyHeaderReady } from './session.js';

export interface ListenerCounters {
  /** Closed connections by outcome. */
  readonly outcomes: Record<Outcome, number>;
  fromClient: number;
  toClient: number;
}

export interface TcpListenerOptions {
  readonly config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  readonly logger: Logger;
  /** Child logger for access lines, or null when TETHER_ACCESS_LOG=off. */
  readonly accessLog: Logger | null;
  /** Called once a connection is routed, before connecting (metrics). */
  readonly onSessionStart?: (session: Session) => void;
  /** Called for every closed connection (metrics). */
  readonly onSessionEnd?: (session: Session) => void;
}

/**
 * A `net.Server` acceptor: routes each connection by its source address (or by power
 * of two choices when the key chain yields nothing) and relays bytes both ways.
 * With TETHER_ACCEPT_PROXY the source address is the one a trusted proxy's PROXY
 * header gives; with TETHER_PROXY_PROTOCOL upstreams get a header of their own.
 */
export class TcpListener implements ListenerContext {
  config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  readonly sessions = new Set<Session>();
  readonly counters: ListenerCounters = {
    outcomes: { ok: 0, refused: 0, no_upstream: 0, connect_failed: 0, bad_request: 0, timeout: 0 },
    fromClient: 0,
    toClient: 0,
  };
  readonly #server: net.Server;
  readonly #logger: Logger;
  readonly #accessLog: Logger | null;
  readonly #onStart: ((session: Session) => void) | undefined;
  readonly #onEnd: ((session: Session) => void) | undefined;
  /** Made once per listener: sessions call it when their PROXY header is read. */
  readonly #onProxyHeader: ProxyHeaderReady = (session, header) => this.#dispatch(session, header);
  #closing = false;

  constructor(options: TcpListenerOptions) {
    this.config = options.config;
    this.pool = options.pool;
    this.health = options.health;
    this.#logger = options.logger;
    this.#accessLog = options.accessLog;
    this.#onStart = options.onSessionStart;
    this.#onEnd = options.onSessionEnd;
    // allowHalfOpen: a client's FIN is passed on, not answered by closing (Node 20's
    // accepted sockets default to false). pauseOnConnect: nothing is read before an
    // upstream can take it, so a failed connect can move to the next upstream.
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
    this.#server.on('connection', (socket: net.Socket) => this.#accept(socket));
    this.#server.on('error', (err) => this.#logger.error({ err }, 'listener error'));
  }

  get name(): string {
    return this.config.name;
  }

  get active(): number {
    return this.sessions.size;
  }

  /** The bound address (the real port when configured with port 0). */
  get address(): string {
    const a = this.#server.address();
    if (a && typeof a === 'object') return formatAddress(a.address, a.port);
    return formatAddress(this.config.listen.host, this.config.listen.port);
  }

  get port(): number {
    const a = this.#server.address();
    return a && typeof a === 'object' ? a.port : this.config.listen.port;
  }

  listen(): Promise<void> {
    const { host, port } = this.config.listen;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new ListenError(formatAddress(host, port), err));
      this.#server.once('error', onError);
      this.#server.listen({ host, port, backlog: 2048 }, () => {
        this.#server.removeListener('error', onError);
        resolve();
      });
    });
  }

  /**
   * Stop accepting; open connections go on. Resolves once the listening socket is
   * closed (server.close's own callback waits for every connection to end).
   */
  stopAccepting(): Promise<void> {
    this.#closing = true;
    if (!this.#server.listening) return Promise.resolve();
    this.#server.close();
    return new Promise((resolve) => setImmediate(resolve));
  }

  closeAll(reason: string): void {
    for (const session of [...this.sessions]) session.close(reason);
  }

  onConnectFailed(session: Session, upstream: Upstream): void {
    this.#logger.warn(
      { upstream: upstream.name, address: upstream.address, error: session.lastError },
      'upstream connect failed',
    );
  }

  onSessionEnd(session: Session): void {
    this.sessions.delete(session);
    const counters = this.counters;
    counters.outcomes[session.outcome]++;
    counters.fromClient += session.fromClient;
    counters.toClient += session.toClient;
    const upstream = session.upstream;
    if (upstream) {
      upstream.bytesFromClient += session.fromClient;
      upstream.bytesToClient += session.toClient;
    }
    this.#onEnd?.(session);
    this.#accessLog?.info({
      listener: this.config.name,
      client: formatAddress(session.clientAddress, session.clientPort),
      upstream: upstream?.name ?? null,
      via: session.via,
      keySource: session.keySource,
      keyHash: session.key === null ? null : keyHashForLog(session.key),
      fromClient: session.fromClient,
      toClient: session.toClient,
      durationMs: Math.round(performance.now() - session.startedAt),
      outcome: session.outcome,
      reason: session.reason,
    });
  }

  #accept(socket: net.Socket): void {
    const address = socket.remoteAddress;
    if (address === undefined || this.#closing) {
      // Already reset by the peer, or we are shutting down.
      socket.destroy();
      return;
    }
    const session = new Session(this, socket, sourceIpKey(address), socket.remotePort ?? 0);
    this.sessions.add(session);
    const config = this.config;
    if (this.sessions.size > config.maxConnections) {
      session.close('connection limit', 'refused');
      return;
    }
    if (config.acceptProxy !== 'off') {
      // Only a trusted peer may speak for someone else; anyone else could pick the
      // upstream (source-ip) and the address upstreams log.
      if (!cidrContains(config.trustedProxies, address)) {
        session.close('untrusted PROXY sender', 'refused');
        return;
      }
      session.readProxyHeader(config.acceptProxy, config.headTimeoutMs, this.#onProxyHeader);
      return;
    }
    this.#dispatch(session, null);
  }

  /** Route and connect; `header` is the inbound PROXY header, if one was read. */
  #dispatch(session: Session, header: ProxyHeader | null): void {
    const config = this.config;
    this.#route(session);
    if (config.proxyProtocol !== 'off') {
      // The client's true endpoints: from the inbound header when it carried them.
      const client = session.client;
      const proxied = header !== null && header.command === 'proxy';
      session.preamble = buildProxyHeader(
        config.proxyProtocol,
        { address: session.clientAddress, port: session.clientPort },
        proxied
          ? { address: header.destAddress, port: header.destPort }
          : { address: client.localAddress ?? '', port: client.localPort ?? 0 },
      );
    }
    this.#onStart?.(session);
    session.connect();
  }

  /** tcp mode sees only the connection: `source-ip` is the one key it can take. */
  #route(session: Session): void {
    const config = this.config;
    let key: string | null = null;
    for (const source of config.key) {
      if (source.kind === 'source-ip') {
        key = session.clientAddress;
        session.keySource = 'source-ip';
        break;
      }
    }
    session.key = key;
    const decision = this.pool.route(key, config.retries + 1);
    session.via = decision.via;
    session.candidates = decision.candidates;
  }
}
