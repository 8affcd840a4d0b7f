import type net from 'node:net';
import type { Logger } from 'pino';
import { cidrContains } from '../../net/cidr.js';
import type { ListenerConfig } from '../../config/types.js';
import type { UpstreamPool } from '../../routing/pool.js';
import type { Upstream } from '../../routing/upstream.js';
import { accessFields } from '../access.js';
import { Acceptor } from '../acceptor.js';
import { sourceIpKey } from '../../net/address.js';
import type { HealthReporter, ListenerContext } from '../context.js';
import { buildProxyHeader } from '../proxy-protocol/build.js';
import type { ProxyHeader } from '../proxy-protocol/header.js';
import { IdleSweeper } from '../idle.js';
import { RELAY_HIGH_WATER_MARK, relayAccepted } from '../relay.js';
import { onClientRead, Session, type ProxyHeaderReady } from '../session.js';
import { ListenerBase } from '../listener-base.js';

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
export class TcpListener extends ListenerBase implements ListenerContext<Session> {
  config: ListenerConfig;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  readonly sessions = new Set<Session>();
  readonly idle = new IdleSweeper(this.sessions, () => this.config.idleTimeoutMs);
  protected readonly acceptor: Acceptor;
  readonly #logger: Logger;
  readonly #accessLog: Logger | null;
  readonly #onStart: ((session: Session) => void) | undefined;
  readonly #onEnd: ((session: Session) => void) | undefined;
  /** Made once per listener: sessions call it when their PROXY header is read. */
  readonly #onProxyHeader: ProxyHeaderReady = (session, header) => this.#dispatch(session, header);
  #closing = false;

  constructor(options: TcpListenerOptions) {
    super();
    this.config = options.config;
    this.pool = options.pool;
    this.health = options.health;
    this.#logger = options.logger;
    this.#accessLog = options.accessLog;
    this.#onStart = options.onSessionStart;
    this.#onEnd = options.onSessionEnd;
    // Accepted sockets relay through relay.ts, which needs its write high-water mark.
    this.acceptor = new Acceptor((socket) => this.#accept(socket), () => this.config.listen, this.#logger, RELAY_HIGH_WATER_MARK);
  }

  get active(): number {
    return this.sessions.size;
  }

  /** Stop accepting; open connections go on. */
  stopAccepting(): Promise<void> {
    this.#closing = true;
    return this.acceptor.stop();
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
    this.count(session);
    this.#onEnd?.(session);
    this.#accessLog?.info(accessFields(this.config.name, session));
  }

  #accept(accepted: net.Socket): void {
    const address = accepted.remoteAddress;
    if (address === undefined || this.#closing) {
      // Already reset by the peer, or we are shutting down.
      accepted.destroy();
      return;
    }
    const port = accepted.remotePort ?? 0;
    // Re-made to read into relay buffers: no allocation per chunk relayed.
    const socket = relayAccepted(accepted, onClientRead);
    if (socket === null) return;
    const session = new Session(this, socket, sourceIpKey(address), port, true);
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
