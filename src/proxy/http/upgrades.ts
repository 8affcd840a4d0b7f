import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import type { ListenerContext } from '../context.js';
import { Session } from '../session.js';
import type { Outcome } from '../types.js';
import { clientOf, noneInFlight, ownResponse, type ClientInfo, type ClientSocket } from './client.js';
import { Exchange, type ExchangeContext } from './exchange.js';
import { errorResponse, serializeResponseHead } from './headers.js';
import { answerAndClose, deferBehindRouted } from './refusals.js';
import { forwardableVersion, hasBody, keepAliveAsked } from './request-checks.js';

/** What the upgrade flow needs from its listener. */
export interface UpgradeHost {
  /** The listener itself, as exchanges and sessions see it. */
  readonly context: ExchangeContext & ListenerContext<Session>;
  /** Draining: answers close their connections. */
  readonly closing: boolean;
  /** Count and log a request turned away before routing. */
  reject(info: ClientInfo, outcome: Outcome, reason: string): void;
  /** Take the exchange's key, decide its upstream and send it. */
  route(exchange: Exchange, info: ClientInfo): void;
  /** Hand the connection (back) to node:http. */
  serve(socket: net.Socket): void;
  /** What waits on this connection may go now (a deferred answer, an upgrade). */
  afterExchange(socket: ClientSocket, info: ClientInfo): void;
  /** The exchange became a tunnel (the listener keeps it, and its pin alive). */
  tunnelOpened(session: Session, from: Exchange): void;
}

/**
 * Upgrade requests in http mode. Refused before routing when tether would not
 * forward them (CONNECT: 501; a bad version or a body: 400). Otherwise routed and
 * sent like any request, after the answers to the requests before them; only a 101
 * from the upstream makes the connection a tunnel (a Session). Any other answer is a
 * plain response, after which node:http parses the connection again from the byte
 * after the upgrade request. Until then the client's later bytes wait unread.
 */
export class Upgrades {
  readonly #host: UpgradeHost;

  constructor(host: UpgradeHost) {
    this.#host = host;
  }

  /** node:http's 'upgrade' (and 'connect'): it has handed the socket over. */
  received(req: IncomingMessage, socket: ClientSocket, head: Buffer): void {
    const info = clientOf(socket)!;
    // Behind a refusal node:http is still to write: the socket closes after it.
    if (info.refused) return;
    const refusal = this.#refusal(req, info);
    if (refusal !== null) {
      socket.setTimeout(0);
      const host = this.#host;
      if (!deferBehindRouted(socket, info, refusal, null, () => host.afterExchange(socket, info))) answerAndClose(socket, info, refusal, false);
      return;
    }
    // Pipelined behind requests still being answered, its answer must come after theirs.
    info.waitingUpgrade = { req, head };
    this.startWaiting(socket, info);
  }

  /** The answer to an upgrade request tether refuses before routing (counted), or null. */
  #refusal(req: IncomingMessage, info: ClientInfo): Buffer | null {
    const host = this.#host;
    if (req.url === '') {
      // llhttp takes `CONNECT \r\n` (an empty target, HTTP/0.9), but no request line
      // written upstream can carry it: the upstream would read another target.
      host.reject(info, 'bad_request', '400: empty request target');
      return errorResponse(400, 'malformed request');
    }
    if (req.method === 'CONNECT') {
      host.reject(info, 'refused', '501: CONNECT');
      return errorResponse(501, 'CONNECT is not supported: tether is not a forward proxy');
    }
    if (!forwardableVersion(req)) {
      host.reject(info, 'bad_request', `400: HTTP/${req.httpVersion} request`);
      return errorResponse(400, 'unsupported HTTP version');
    }
    if (hasBody(req)) {
      // node:http takes what follows the head as the new protocol's bytes; a body
      // there would be read as a request if the upstream refused.
      host.reject(info, 'bad_request', '400: upgrade request with a body');
      return errorResponse(400, 'an upgrade request cannot carry a body');
    }
    return null;
  }

  /** Start the upgrade waiting on this connection once no response is still to be written before it. */
  startWaiting(socket: ClientSocket, info: ClientInfo): void {
    const waiting = info.waitingUpgrade;
    if (waiting === null) return;
    if (socket.destroyed || !socket.writable) {
      info.waitingUpgrade = null;
      return;
    }
    // Requests of ours in flight: their ends call again.
    if (!noneInFlight(info)) return;
    // A response node:http makes itself (417, 400 for a missing Host) may still be under way.
    const own = ownResponse(socket, info);
    if (own !== null) {
      // Rare: a closure is fine. After node:http's own 'finish' work (next response, or the close).
      own.once('finish', () => setImmediate(() => this.startWaiting(socket, info)));
      return;
    }
    info.waitingUpgrade = null;
    this.#start(socket, info, waiting.req, waiting.head);
  }

  #start(socket: ClientSocket, info: ClientInfo, req: IncomingMessage, head: Buffer): void {
    const host = this.#host;
    // Written like any response until the upstream says 101; node:http's own
    // response machinery (framing, Date, keep-alive) on a socket it no longer parses.
    const res = new http.ServerResponse(req);
    res.shouldKeepAlive = !host.closing && keepAliveAsked(req);
    res.assignSocket(socket);
    res.on('finish', onUpgradeAnswered);
    // node:http's idle timer is still set on the socket, but its handler is gone.
    socket.on('timeout', onHandshakeTimeout);
    const exchange = new Exchange(host.context, req, res, info.address, info.port);
    exchange.upgradeHead = head;
    info.upgrading = exchange;
    host.route(exchange, info);
  }

  /**
   * An upgrade request was answered with something other than 101: the connection
   * stays HTTP. node:http parses it again from the byte after the upgrade request
   * (requests there are routed, and refused, one by one), or it closes when the
   * answer said so.
   */
  answered(res: ServerResponse): void {
    const socket = res.socket as ClientSocket;
    const info = clientOf(socket)!;
    const exchange = info.upgrading!;
    info.upgrading = null;
    socket.removeListener('timeout', onHandshakeTimeout);
    res.detachSocket(socket);
    // node:http emits a response's 'close' itself only for responses it made; this
    // one ends its exchange.
    res.emit('close');
    // A client that has closed its side (its FIN came with or after the upgrade
    // request) sends nothing more to parse: what it sent after the request is dropped.
    if (!res.shouldKeepAlive || this.#host.closing || socket.destroyed || !socket.writable || socket.readableEnded) {
      socket.destroySoon();
      return;
    }
    const rest = exchange.upgradeHead!;
    if (rest.length > 0) socket.unshift(rest);
    this.#host.serve(socket);
  }

  /** The upstream answered 101: from here the connection is a tunnel. */
  tunnel(exchange: Exchange, response: IncomingMessage, upstreamSocket: net.Socket, upstreamHead: Buffer): void {
    const client = exchange.client as ClientSocket;
    const info = clientOf(client)!;
    info.upgrading = null;
    info.exchanges?.delete(exchange);
    client.removeListener('timeout', onHandshakeTimeout);
    exchange.res.detachSocket(client);
    const session = new Session(this.#host.context, client, info.address, info.port, false, exchange.startedAt);
    session.key = exchange.key;
    session.keySource = exchange.keySource;
    session.via = exchange.via;
    session.candidates = exchange.candidates;
    session.attempt = exchange.attempt;
    session.fromClient = exchange.fromClient;
    session.toClient = exchange.toClient;
    const rest = exchange.upgradeHead!;
    if (rest.length > 0) session.pending = rest;
    this.#host.tunnelOpened(session, exchange);
    const head = serializeResponseHead(response.statusCode!, response.statusMessage ?? '', response.rawHeaders);
    session.adopt(exchange.upstream!, upstreamSocket, upstreamHead.length > 0 ? Buffer.concat([head, upstreamHead]) : head);
  }
}

function onUpgradeAnswered(this: ServerResponse): void {
  clientOf(this.socket!)!.owner.onUpgradeAnswered(this);
}

/** Silence while an upgrade request waits for its answer (TETHER_IDLE_TIMEOUT_MS). */
function onHandshakeTimeout(this: net.Socket): void {
  this.destroy();
}
