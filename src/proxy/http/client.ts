import type http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type net from 'node:net';
import { sourceIpKey } from '../../net/address.js';
import type { Upstream } from '../../routing/upstream.js';
import type { ProxyPrelude } from '../proxy-protocol/prelude.js';
import type { Exchange } from './exchange.js';

/** What the socket's module-level event handlers call on the listener that owns it. */
export interface ClientOwner {
  onClientClosed(socket: ClientSocket): void;
  onProxyHeaderChunk(socket: ClientSocket, chunk: Buffer): void;
  onProxyHeaderIncomplete(socket: ClientSocket, timedOut: boolean): void;
  onUpgradeAnswered(res: ServerResponse): void;
}

/** An upgrade request that came while earlier requests were in flight. */
export interface WaitingUpgrade {
  readonly req: IncomingMessage;
  readonly head: Buffer;
}

/** What http mode knows of one client connection, kept on its socket. */
export interface ClientInfo {
  readonly owner: ClientOwner;
  /** The `source-ip` key form: the peer's, or what a trusted PROXY header said. */
  address: string;
  port: number;
  /** The address the client connected to (for an outgoing PROXY header). */
  destAddress: string;
  destPort: number;
  /** Upstream connections private to this client (only with TETHER_PROXY_PROTOCOL). */
  agents: Map<Upstream, http.Agent> | null;
  /** While reading an inbound PROXY header. */
  prelude: ProxyPrelude<ClientSocket> | null;
  /** Ends the linger after a refusal. */
  lingerTimer: NodeJS.Timeout | null;
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
  /** After a refusal was answered: until when (performance.now()) the rest is read and dropped; 0 before. */
  lingerUntil: number;
  /** Its requests in flight (made with the first request). */
  exchanges: Set<Exchange> | null;
}

export const kClient = Symbol('tether.client');
export type ClientSocket = net.Socket & { [kClient]?: ClientInfo };

/** Tag an accepted socket with what http mode keeps of it. */
export function adoptClient(socket: net.Socket, address: string, owner: ClientOwner): ClientInfo {
  const info: ClientInfo = {
    owner,
    address: sourceIpKey(address),
    port: socket.remotePort ?? 0,
    destAddress: socket.localAddress ?? '',
    destPort: socket.localPort ?? 0,
    agents: null,
    prelude: null,
    lingerTimer: null,
    upgrading: null,
    waitingUpgrade: null,
    deferred: null,
    refused: false,
    lingerUntil: 0,
    exchanges: null,
  };
  (socket as ClientSocket)[kClient] = info;
  return info;
}

export function clientOf(socket: net.Socket): ClientInfo | undefined {
  return (socket as ClientSocket)[kClient];
}

/** No request of this connection is still waiting for its upstream's answer. */
export function noneInFlight(info: ClientInfo): boolean {
  if (info.exchanges !== null) for (const exchange of info.exchanges) if (!exchange.aborted) return false;
  return true;
}

/**
 * The response node:http is writing on this connection when it is one it made itself
 * (417, or 400 for a missing Host), not an exchange's (nor `except`); null when none.
 */
export function ownResponse(socket: net.Socket, info: ClientInfo, except: ServerResponse | null = null): ServerResponse | null {
  const busy = (socket as net.Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (busy === undefined || busy === null || busy === except) return null;
  if (info.exchanges !== null) for (const exchange of info.exchanges) if (exchange.res === busy) return null;
  return busy;
}
