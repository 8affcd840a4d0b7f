import http from 'node:http';
import net from 'node:net';
import type { ListenerConfig } from '../../config/types.js';
import type { Upstream } from '../../routing/upstream.js';
import { buildProxyHeader } from '../proxy-protocol/build.js';
import type { ClientInfo } from './client.js';
import type { UpgradeConnector } from './exchange.js';

/**
 * The upstream connections http mode sends requests on: kept alive and shared per
 * upstream (nginx `keepalive`, HAProxy `http-reuse safe`), or, with
 * TETHER_PROXY_PROTOCOL, private to one client, since each starts with a header naming
 * it (HAProxy makes such connections private too). An upgrade request always gets a
 * connection of its own: it may become that client's tunnel.
 */
export class UpstreamAgents {
  readonly #config: () => ListenerConfig;
  readonly #shared = new WeakMap<Upstream, http.Agent>();

  constructor(config: () => ListenerConfig) {
    this.#config = config;
  }

  /** The keep-alive agent for `upstream` as seen from this client connection. */
  agentFor(info: ClientInfo, upstream: Upstream): http.Agent {
    if (this.#config().proxyProtocol !== 'off') return this.#private(info, upstream);
    let agent = this.#shared.get(upstream);
    if (agent === undefined) {
      agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' });
      this.#shared.set(upstream, agent);
    }
    return agent;
  }

  /** How an upgrade's connection is made: null for a plain one, else one that writes the PROXY header first. */
  upgradeConnector(info: ClientInfo): UpgradeConnector | null {
    const header = this.#proxyHeader(info);
    if (header === null) return null;
    return (options) => connectWith(header, options as net.NetConnectOpts);
  }

  /** The client is gone: its private connections go with it. */
  static release(info: ClientInfo): void {
    if (info.agents !== null) for (const agent of info.agents.values()) agent.destroy();
  }

  #private(info: ClientInfo, upstream: Upstream): http.Agent {
    info.agents ??= new Map();
    let agent = info.agents.get(upstream);
    if (agent === undefined) {
      const header = this.#proxyHeader(info)!;
      const made = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 16 });
      made.createConnection = (options: net.NetConnectOpts): net.Socket => connectWith(header, options);
      info.agents.set(upstream, made);
      agent = made;
    }
    return agent;
  }

  #proxyHeader(info: ClientInfo): Buffer | null {
    const version = this.#config().proxyProtocol;
    if (version === 'off') return null;
    return buildProxyHeader(version, { address: info.address, port: info.port }, { address: info.destAddress, port: info.destPort });
  }
}

function connectWith(header: Buffer, options: net.NetConnectOpts): net.Socket {
  const socket = net.connect(options);
  socket.write(header);
  return socket;
}
