import type { Logger } from 'pino';
import { cidrContains } from '../../net/cidr.js';
import type { ListenerConfig } from '../../config/types.js';
import type { UpstreamPool } from '../../routing/pool.js';
import type { Upstream } from '../../routing/upstream.js';
import { accessFields } from '../access.js';
import { Acceptor } from '../acceptor.js';
import { Admission } from '../admission.js';
import { sourceIpKey } from '../../net/address.js';
import type { HealthReporter, ListenerContext, RoutedRecord } from '../context.js';
import { buildProxyHeader } from '../proxy-protocol/build.js';
import type { ProxyHeader } from '../proxy-protocol/header.js';
import { IdleSweeper } from '../idle.js';
import { RELAY_HIGH_WATER_MARK, type RelaySocket } from '../relay.js';
import { onClientRead, Session } from '../session.js';
import { ListenerBase, type ListenerOptions } from '../listener-base.js';
import type { FoundKey } from '../../routing/keys.js';
import type { RouteDecision } from '../../routing/types.js';
import { readFirstBytes, type KeyReady } from './first-bytes.js';
import { tcpKeyChain, type TcpKeyChain } from './key-chain.js';
import { readProxyHeader, type ProxyHeaderReady } from './proxy-header.js';
import { Stick } from './stick.js';

export type TcpListenerOptions = ListenerOptions<Session>;

/**
 * A `net.Server` acceptor: each connection goes through its opening phases (an
 * inbound PROXY header with TETHER_ACCEPT_PROXY, then its first bytes when the key
 * chain reads them), is routed by its key (a learned pin first with TETHER_STICK, or
 * by power of two choices when the chain yields nothing) and relays bytes both ways.
 * With TETHER_PROXY_PROTOCOL upstreams get a header of their own.
 */
export class TcpListener extends ListenerBase implements ListenerContext<Session> {
  #config: ListenerConfig;
  /** The key chain as tcp mode reads it, made once per configuration. */
  #chain: TcpKeyChain;
  readonly pool: UpstreamPool;
  readonly health: HealthReporter;
  readonly sessions = new Set<Session>();

  /** Units open now, whose byte counts grow as bytes pass (admin/live-bytes.ts). */
  openUnits(): Iterable<RoutedRecord> {
    return this.sessions;
  }
  readonly idle = new IdleSweeper(this.sessions, () => this.#config.idleTimeoutMs);
  protected readonly acceptor: Acceptor;
  readonly #admission: Admission<RelaySocket>;
  readonly #stick: Stick;
  readonly #logger: Logger;
  readonly #accessLog: Logger | null;
  readonly #onStart: ((session: Session) => void) | undefined;
  readonly #onEnd: ((session: Session) => void) | undefined;
  // Made once per listener: sessions call them when a phase ends.
  readonly #onProxyHeader: ProxyHeaderReady = (session, header) => this.#headerRead(session, header);
  readonly #onKey: KeyReady = (session, found) => this.#route(session, found);

  constructor(options: TcpListenerOptions) {
    super();
    this.#config = options.config;
    this.#chain = tcpKeyChain(options.config.key);
    this.pool = options.pool;
    this.health = options.health;
    this.#stick = new Stick(options.pins, () => this.#config.stickyTtlS);
    this.#logger = options.logger;
    this.#accessLog = options.accessLog;
    this.#onStart = options.onSessionStart;
    this.#onEnd = options.onSessionEnd;
    this.acceptor = new Acceptor({
      configured: () => this.#config.listen,
      logger: this.#logger,
      onRead: onClientRead,
      onAccepted: (socket, address, port) => this.#admission.offer(socket, address, port),
      // Accepted net.Sockets relay through relay.ts, which needs its write high-water mark.
      highWaterMark: RELAY_HIGH_WATER_MARK,
    });
    this.#admission = new Admission<RelaySocket>(
      {
        active: () => this.sessions.size,
        maxConnections: () => this.#config.maxConnections,
        admitted: (socket, address, port) => this.#admitted(socket, address, port),
        refused: (socket, address, port) => new Session(this, socket, sourceIpKey(address), port).close('connection limit', 'refused'),
      },
      options.lease ?? null,
    );
  }

  get config(): ListenerConfig {
    return this.#config;
  }

  /** A reload: connections accepted from now read the new chain. */
  set config(config: ListenerConfig) {
    const old = this.#config;
    this.#config = config;
    if (old.key !== config.key) this.#chain = tcpKeyChain(config.key);
    if (old.stickyTtlS !== config.stickyTtlS) this.#stick.ttlChanged();
  }

  get active(): number {
    return this.sessions.size;
  }

  /** Stop accepting; open connections go on. */
  stopAccepting(): Promise<void> {
    this.#admission.close();
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
    this.#stick.failed(session, upstream);
  }

  onSessionOpen(session: Session): void {
    const key = session.key;
    if (key !== null && this.#config.stick) this.#stick.opened(session, key);
  }

  onSessionEnd(session: Session): void {
    this.sessions.delete(session);
    this.#stick.ended(session);
    this.count(session);
    this.#onEnd?.(session);
    this.#accessLog?.info(accessFields(this.#config.name, session));
  }

  #admitted(socket: RelaySocket, address: string, port: number): void {
    const session = new Session(this, socket, sourceIpKey(address), port);
    this.sessions.add(session);
    const config = this.#config;
    if (config.acceptProxy !== 'off') {
      // Only a trusted peer may speak for someone else; anyone else could pick the
      // upstream (source-ip) and the address upstreams log.
      if (!cidrContains(config.trustedProxies, address)) {
        session.close('untrusted PROXY sender', 'refused');
        return;
      }
      readProxyHeader(session, config.acceptProxy, config.headTimeoutMs, this.#onProxyHeader);
      return;
    }
    this.#headerRead(session, null);
  }

  /** The PROXY header phase is over (`header`: the inbound one, if one was read): find the key. */
  #headerRead(session: Session, header: ProxyHeader | null): void {
    const config = this.#config;
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
    const chain = this.#chain;
    if (chain.links.length > 0) {
      readFirstBytes(session, chain, { bytes: config.inspectBytes, timeoutMs: config.inspectTimeoutMs }, this.#onKey);
      return;
    }
    // Nothing to read first: routed at once, without waiting for a byte.
    this.#route(session, chain.sourceIp ? { key: session.clientAddress, source: 'source-ip' } : null);
  }

  #route(session: Session, found: FoundKey | null): void {
    const config = this.#config;
    const key = found === null ? null : found.key;
    session.key = key;
    if (found !== null) session.keySource = found.source;
    const max = config.retries + 1;
    if (key !== null && config.stick) {
      const decision = this.#stick.route(this.pool, key, max);
      if (decision instanceof Promise) void decision.then((d) => this.#connect(session, d));
      else this.#connect(session, decision);
      return;
    }
    this.#connect(session, this.pool.route(key, max));
  }

  #connect(session: Session, decision: RouteDecision): void {
    session.via = decision.via;
    session.candidates = decision.candidates;
    this.#onStart?.(session);
    session.connect();
  }
}
