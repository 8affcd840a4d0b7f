import type { ListenerConfig } from '../../config/types.js';
import type { RelaySocket } from '../relay.js';
import type { RouteDecision } from '../../routing/types.js';
import type { Upstream } from '../../routing/upstream.js';
import type { Outcome } from '../types.js';
import type { Exchange } from './exchange.js';
import type { RequestHead, ResponseHead } from './h1/index.js';
import type { UpstreamSocket, UpstreamSockets } from './upstream-sockets.js';

/**
 * What the parts of an http client connection know of each other: the listener
 * (listener.ts), the client half (connection.ts, client-close.ts) and the upstream
 * half (upstream-side.ts, response-head.ts). Types and the client's phases only,
 * and nothing of those parts imported, so that each can import them without an
 * import cycle.
 */

// Client-side phases.
/** Between requests: no byte of the next head yet. */
export const IDLE = 0;
/** Reading a request head. */
export const HEAD = 1;
/** Head read: routing, connecting (the client's bytes wait, paused). */
export const ROUTING = 2;
/** The request is upstream: its body relayed, its response awaited and relayed. */
export const EXCHANGE = 3;
/** tether's own answer is out; what the client still sends is read and dropped. */
export const CLOSING = 4;
/** Closed, or handed to a tunnel. */
export const DONE = 5;

/**
 * A client socket as http mode uses it: a connection served on its TCP handle
 * (net/handle-socket.ts), or a net.Socket where this Node gives no handles. Both
 * read through a read callback (client-reads.ts) into relay buffers, and both
 * behave alike in what is named here; as a RelaySocket, an upgraded connection's
 * Session relays on it as it is.
 */
export interface ClientSocket extends RelaySocket {
  /** Not ended and not destroyed. */
  readonly writable: boolean;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  end(): unknown;
  end(data: Buffer): unknown;
  destroySoon(): void;
}

/** Where a client connects from: all that counting and logging a refusal needs. */
export interface ClientAddress {
  readonly address: string;
  readonly port: number;
}

/**
 * A client connection as its listener is told of it: by the members the listener
 * reads, not as connection.ts's HttpConnection, which would be an import cycle.
 */
export interface ClientConnection extends ClientAddress {
  readonly destAddress: string;
  readonly destPort: number;
}

/** What the upstream side uses of its listener. */
export interface UpstreamSideHost {
  readonly config: ListenerConfig;
  /** Draining: every answer closes its connection. */
  readonly closing: boolean;
  readonly upstreamSockets: UpstreamSockets;
  takeResponseParser(): ResponseHead;
  giveResponseParser(parser: ResponseHead): void;
  acquire(exchange: Exchange, upstream: Upstream): void;
  release(exchange: Exchange, upstream: Upstream): void;
  connectFailed(exchange: Exchange, upstream: Upstream, error: string): void;
  connectSucceeded(upstream: Upstream): void;
  /** Learn pins from a response head (and pin the request's key, TETHER_STICK); resolves once they are stored (null: nothing to store). */
  learn(exchange: Exchange, upstream: Upstream, head: ResponseHead): Promise<void> | null;
}

/** What a client connection needs from its listener. */
export interface ConnectionHost extends UpstreamSideHost {
  takeRequestParser(): RequestHead;
  giveRequestParser(parser: RequestHead): void;
  /** The upstreams to try for `key`: a pin's first, else the hash order, or p2c. */
  decide(key: string | null): RouteDecision | Promise<RouteDecision>;
  /** A request was read (in flight until it ends, or becomes a tunnel). */
  begun(): void;
  /** Routed (metrics). */
  started(exchange: Exchange): void;
  /** The exchange is over: count and log it. */
  ended(exchange: Exchange): void;
  /** A request turned away before routing: count and log it. */
  reject(client: ClientAddress, outcome: Outcome, reason: string): void;
  /** The upstream answered 101: the two sockets become a tunnel. */
  tunnel(exchange: Exchange, client: ClientSocket, upstream: UpstreamSocket, toClient: Buffer, toUpstream: Buffer | null): void;
  /** The connection is closed, or handed to a tunnel. */
  released(connection: ClientConnection): void;
  /** The PROXY header this client's upstream connections start with, or null (TETHER_PROXY_PROTOCOL). */
  proxyHeaderFor(connection: ClientConnection): Buffer | null;
}

/** What the upstream side uses of its client connection (connection.ts). */
export interface ClientSide {
  readonly socket: ClientSocket;
  /** The exchange under way, if any. */
  readonly exchange: Exchange | null;
  /** The head of the request under way. */
  readonly request: RequestHead;
  /** The request's body has all gone upstream (or it had none). */
  readonly requestDone: boolean;
  /** The request asks for a protocol switch. */
  readonly upgrade: boolean;
  /** The PROXY header this client's upstream connections start with, or null. */
  readonly proxyHeader: Buffer | null;
  /** A byte moved. */
  touch(): void;
  /** The head is written upstream: relay what has come of the body, read on. */
  requestSent(): void;
  /** The upstream takes body bytes again. */
  upstreamDrained(): void;
  /** The response has all gone to the client. */
  responseDone(): void;
  /** tether's own answer instead of a response (502, 503): the connection closes after it. */
  answer(status: number, detail: string, outcome: Outcome, reason: string): void;
  /** Close the client connection at once (a response cut off, a store failing). */
  close(reason: string): void;
  /** The upstream said 101: both sockets become a tunnel, `head` and `buf[at..]` first to the client. */
  tunnel(head: Buffer, buf: Buffer, at: number, upstream: UpstreamSocket): void;
}
