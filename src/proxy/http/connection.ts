import { requestKey } from '../../routing/keys.js';
import type { RouteDecision } from '../../routing/types.js';
import { formatAddress } from '../../routing/upstream.js';
import { idleClock } from '../idle.js';
import type { Outcome } from '../types.js';
import { answerAndClose, answerInstead, clientEndedNow, handleClientClose, handleClientEnd, refuse, type ClosingClient } from './client-close.js';
import { Exchange } from './exchange.js';
import { CONNECTION_KEEP_ALIVE, CONNECTION_UPGRADE, forwardHead } from './forward-head.js';
import { Body, FAILED, h1ErrorName, h1ErrorStatus, NEED_MORE, type RequestHead } from './h1/index.js';
import { MessageBody } from './h1/message-body.js';
import type { LingeringClose } from './lingering-close.js';
import { CLOSING, DONE, EXCHANGE, HEAD, IDLE, ROUTING, type ClientSide, type ClientSocket, type ConnectionHost } from './types.js';
import type { UpstreamSocket } from './upstream-sockets.js';
import { UpstreamSide } from './upstream-side.js';

const kConnection = Symbol('tether.httpConnection');
type ConnectionSocket = ClientSocket & { [kConnection]?: HttpConnection };

/**
 * One client connection in http mode: requests read as bytes (h1/), each routed on
 * its own key, written upstream as received (less hop-by-hop fields), the response
 * relayed the same way. One request at a time: pipelined requests wait, read but
 * unparsed, until the one before is answered, so answers stay in order and a
 * refusal never overtakes a routed request.
 *
 * Bad input gets its status and a close (client-close.ts): 400 malformed or
 * ambiguous head (h1/'s rules, stricter than llhttp's), missing Host on HTTP/1.1,
 * a bad chunk, or an upgrade request with a body; 408 head not complete within
 * TETHER_HEAD_TIMEOUT_MS; 431 head over TETHER_MAX_HEAD_BYTES; 501 CONNECT; 502
 * upstream closed or broke before answering; 503 no upstream.
 */
export class HttpConnection implements ClientSide, ClosingClient {
  readonly socket: ConnectionSocket;
  readonly host: ConnectionHost;
  /** The `source-ip` key form: the peer's, or what a trusted PROXY header said. */
  address: string;
  port: number;
  /** The address the client connected to, once known: from a PROXY header, or read when first asked. */
  #destAddress: string | null = null;
  #destPort = 0;
  phase: number = IDLE;
  /** When the head being waited for started (`performance.now()`): the connection's start for the first one; 0 between requests. */
  headStartedAt: number;
  /** `idleClock.now` when a byte last moved either way. */
  activeAt = idleClock.now;
  exchange: Exchange | null = null;

  #req: RequestHead | null = null;
  /** The request's body framing (made with the first request). */
  #body: MessageBody | null = null;
  /** A request head spans reads (its bytes are copied out of the parser). */
  #headSpans = false;
  /** Client bytes read and not yet relayed or parsed (the next requests). */
  pending: Buffer | null = null;
  /** The client has ended its side. */
  clientEnded = false;
  #upgrade = false;
  #requestDone = false;
  /** The upstream half (made with the first request). */
  #upstream: UpstreamSide | null = null;
  /** The PROXY header for upstream connections, once asked (undefined: not yet). */
  #proxyHeader: Buffer | null | undefined = undefined;

  /** Reading requests (an inbound PROXY header comes before, on its own deadline). */
  #serving = false;
  /** The lingering close after tether's own answer (client-close.ts). */
  linger: LingeringClose | null = null;

  constructor(host: ConnectionHost, socket: ClientSocket, address: string, port: number) {
    this.host = host;
    this.socket = socket as ConnectionSocket;
    this.address = address;
    this.port = port;
    this.headStartedAt = performance.now();
    this.socket[kConnection] = this;
    socket.on('close', onClientClose);
    socket.on('error', onClientError);
  }

  /** Start reading requests (after any PROXY header); reads come to `onClientData` (client-reads.ts). */
  serve(): void {
    const socket = this.socket;
    this.#serving = true;
    socket.on('end', onClientEnd);
    socket.on('drain', onClientDrain);
    socket.resume();
  }

  /**
   * The address the client connected to (Host for HTTP/1.0, an outgoing PROXY header).
   * Read from the socket only when asked: a getsockname call per connection otherwise.
   */
  get destAddress(): string {
    if (this.#destAddress === null) this.#readDest();
    return this.#destAddress!;
  }

  get destPort(): number {
    if (this.#destAddress === null) this.#readDest();
    return this.#destPort;
  }

  /** What a trusted PROXY header said the client connected to. */
  setDest(address: string, port: number): void {
    this.#destAddress = address;
    this.#destPort = port;
  }

  #readDest(): void {
    this.#destAddress = this.socket.localAddress ?? '';
    this.#destPort = this.socket.localPort ?? 0;
  }

  /** Reading requests (else still its PROXY header). */
  get serving(): boolean {
    return this.#serving;
  }

  /** Nothing under way and nothing of a next request read: a drain may close it now. */
  get idle(): boolean {
    return this.phase === IDLE && this.pending === null;
  }

  /** Close at once (drain deadline, shutdown, an upstream removed, a response cut off, a client gone mid-body). */
  close(reason: string): void {
    if (this.exchange !== null && !this.exchange.reason) this.exchange.reason = reason;
    this.socket.destroy();
  }

  // ------------------------------------------------------------------ what the upstream side reads

  get request(): RequestHead {
    return this.#req!;
  }

  get requestDone(): boolean {
    return this.#requestDone;
  }

  get upgrade(): boolean {
    return this.#upgrade;
  }

  get upstreamSide(): UpstreamSide | null {
    return this.#upstream;
  }

  get proxyHeader(): Buffer | null {
    if (this.#proxyHeader === undefined) this.#proxyHeader = this.host.proxyHeaderFor(this);
    return this.#proxyHeader;
  }

  touch(): void {
    this.activeAt = idleClock.now;
  }

  // ------------------------------------------------------------------ deadlines

  /** The listener's sweep: the head deadline (408), and silence (TETHER_IDLE_TIMEOUT_MS). */
  sweep(now: number, headTimeoutMs: number, idleMs: number): void {
    if (!this.#serving) return;
    if (this.phase === HEAD || (this.phase === IDLE && this.headStartedAt > 0)) {
      if (now - this.headStartedAt >= headTimeoutMs) refuse(this, 408, 'timeout', 'request head not received in time', 'request head not received in time', true);
      return;
    }
    if (idleMs <= 0 || this.phase === CLOSING || this.phase === DONE) return;
    if (now - this.activeAt < idleMs) return;
    if (this.exchange !== null) {
      this.exchange.outcome = 'timeout';
      if (!this.exchange.reason) this.exchange.reason = 'idle timeout';
    }
    this.socket.destroy();
  }

  // ------------------------------------------------------------------ client bytes

  onClientData(chunk: Buffer): void {
    this.activeAt = idleClock.now;
    this.#consume(chunk, 0);
  }

  /** Take `buf` from `at` in the current phase. */
  #consume(buf: Buffer, at: number): void {
    switch (this.phase) {
      case IDLE:
        this.phase = HEAD;
        if (this.headStartedAt === 0) this.headStartedAt = performance.now();
        this.#req ??= this.host.takeRequestParser();
        this.#readHead(buf, at);
        return;
      case HEAD:
        this.#readHead(buf, at);
        return;
      case EXCHANGE:
        if (!this.#requestDone) {
          at = this.#relayBody(buf, at);
          if (at < 0) return;
        }
        this.#stash(buf, at);
        return;
      case CLOSING:
        this.linger?.read();
        return;
      case DONE:
        return;
      default:
        this.#stash(buf, at);
    }
  }

  /** Keep the client's bytes from `at` for later and stop reading. */
  #stash(buf: Buffer, at: number): void {
    if (at >= buf.length) return;
    const rest = at === 0 ? buf : buf.subarray(at);
    this.pending = this.pending === null ? rest : Buffer.concat([this.pending, rest]);
    this.socket.pause();
  }

  /** Go on with the bytes kept while the last request was under way; read again if they are used up. */
  #resumeClient(): void {
    const pending = this.pending;
    if (pending !== null) {
      this.pending = null;
      this.#consume(pending, 0);
    }
    if (this.pending !== null || this.phase === DONE || this.phase === CLOSING || this.phase === ROUTING) return;
    // The upstream is not taking the body as fast: 'drain' resumes.
    if (this.phase === EXCHANGE && !this.#requestDone && this.#upstream!.needsDrain) return;
    if (this.clientEnded) {
      clientEndedNow(this);
      return;
    }
    this.socket.resume();
  }

  #readHead(buf: Buffer, at: number): void {
    const req = this.#req!;
    const end = req.execute(buf, at, buf.length);
    if (end === NEED_MORE) {
      this.#headSpans = true;
      return;
    }
    if (end === FAILED) {
      const status = h1ErrorStatus(req.error);
      refuse(this, status, 'bad_request', `${status}: ${h1ErrorName(req.error)}`, status === 431 ? 'request head too large' : 'malformed request', false);
      return;
    }
    const length = req.bytes.length;
    const head = this.#headSpans ? Buffer.from(req.bytes) : buf.subarray(end - length, end);
    this.#headSpans = false;
    // Reading goes on while the request is under way (a pause and a resume per request
    // would cost two epoll_ctl calls); bytes that come meanwhile are stashed, and only
    // then does reading stop.
    this.#stash(buf, end);
    this.#request(head);
  }

  /** A whole request head: refused, or routed and sent. */
  #request(received: Buffer): void {
    const req = this.#req!;
    if (req.isConnect) return refuse(this, 501, 'refused', '501: CONNECT', 'CONNECT is not supported: tether is not a forward proxy', false);
    if (req.versionMinor === 1 && !req.hasHost) return refuse(this, 400, 'bad_request', '400: no Host', 'malformed request', false);
    this.#upgrade = req.upgrade;
    if (this.#upgrade && req.bodyKind !== Body.None) {
      return refuse(this, 400, 'bad_request', '400: upgrade request with a body', 'an upgrade request cannot carry a body', false);
    }
    const exchange = new Exchange(this, this.address, this.port, req.method);
    this.exchange = exchange;
    this.host.begun();
    this.phase = ROUTING;
    this.headStartedAt = 0;
    exchange.fromClient = received.length;
    const head = forwardHead(req, received, this.#upgrade, this.#linesToAdd(req));
    (this.#body ??= new MessageBody({ maxTrailerBytes: this.host.config.maxHeadBytes })).start(req.bodyKind, req.contentLength);
    this.#requestDone = req.bodyKind === Body.None;
    const found = requestKey(this.host.config.key, req, this.address);
    if (found !== null) {
      exchange.key = found.key;
      exchange.keySource = found.source;
    }
    const decision = this.host.decide(exchange.key);
    if (!(decision instanceof Promise)) return this.#routed(exchange, decision, head);
    decision.then(
      (d) => this.#routed(exchange, d, head),
      (err: unknown) => {
        exchange.reason = `routing failed: ${String(err)}`;
        this.socket.destroy();
      },
    );
  }

  /** Lines the relay adds to a request: the Connection it owns, and Host for HTTP/1.0 without one. */
  #linesToAdd(req: RequestHead): string {
    let add = this.#upgrade ? CONNECTION_UPGRADE : req.versionMinor === 0 ? CONNECTION_KEEP_ALIVE : '';
    // HTTP/1.0 need not carry Host; a strict upstream may want it: name the address the client reached.
    if (!req.hasHost) add += `Host: ${formatAddress(this.destAddress, this.destPort)}\r\n`;
    return add;
  }

  #routed(exchange: Exchange, decision: RouteDecision, head: Buffer): void {
    if (this.exchange !== exchange) return;
    exchange.via = decision.via;
    exchange.candidates = decision.candidates;
    this.host.started(exchange);
    (this.#upstream ??= new UpstreamSide(this, this.host)).send(head);
  }

  requestSent(): void {
    this.phase = EXCHANGE;
    // The body (and whatever follows it) as far as it has come; then read on.
    this.#resumeClient();
  }

  /** Relay request body bytes from `at`; the offset after the body once it ends, else -1. */
  #relayBody(buf: Buffer, at: number): number {
    const end = this.#body!.end(buf, at);
    if (end === FAILED) {
      // A malformed chunk: the upstream has part of a body it must not wait on.
      this.#upstream!.spoil();
      this.answer(400, 'malformed request', 'bad_request', `400: ${h1ErrorName(this.#body!.error)} in the request body`);
      return -1;
    }
    const stop = end === NEED_MORE ? buf.length : end;
    if (stop > at) {
      this.exchange!.fromClient += stop - at;
      if (!this.#upstream!.write(at === 0 && stop === buf.length ? buf : buf.subarray(at, stop))) this.socket.pause();
    }
    if (end === NEED_MORE) return -1;
    this.#requestDone = true;
    return end;
  }

  upstreamDrained(): void {
    if (this.phase === EXCHANGE && !this.#requestDone && this.pending === null) this.socket.resume();
  }

  onClientDrain(): void {
    if (this.phase === EXCHANGE) this.#upstream!.clientDrained();
  }

  // ------------------------------------------------------------------ the end of an exchange

  /** The response is out: the upstream connection kept or closed, the client served on or closed. */
  responseDone(): void {
    const upstream = this.#upstream!;
    upstream.finish(this.exchange!.upstream!);
    this.endExchange();
    if (upstream.closeAfter) {
      // Nothing more is parsed (RFC 9112 9.6); the same lingering close as after an answer of ours.
      answerAndClose(this, null, false);
      return;
    }
    this.phase = IDLE;
    this.#req!.reset();
    if (this.pending === null) {
      // Idle between requests: the parser goes back for other connections.
      this.host.giveRequestParser(this.#req!);
      this.#req = null;
    }
    this.#resumeClient();
  }

  endExchange(): void {
    const exchange = this.exchange!;
    this.exchange = null;
    this.#upstream?.reset();
    if (exchange.upstream !== null) this.host.release(exchange, exchange.upstream);
    if (!exchange.reason) exchange.reason = exchange.status > 0 ? 'answered' : 'client closed';
    this.host.ended(exchange);
  }

  /** The upstream said 101: the client gets its head as sent, and both sockets become a tunnel. */
  tunnel(head: Buffer, buf: Buffer, at: number, upstream: UpstreamSocket): void {
    const exchange = this.exchange!;
    this.exchange = null;
    this.phase = DONE;
    const socket = this.socket;
    // Its reads go to the tunnel's Session from now on (client-reads.ts).
    socket[kConnection] = undefined;
    socket.removeListener('end', onClientEnd);
    socket.removeListener('drain', onClientDrain);
    socket.removeListener('close', onClientClose);
    socket.removeListener('error', onClientError);
    socket.pause();
    this.releaseParser();
    this.#upstream!.reset();
    this.host.released(this);
    // Handed over, not ended: the tunnel is counted and logged as one connection when it closes.
    this.host.release(exchange, exchange.upstream!);
    const toClient = at < buf.length ? Buffer.concat([head, buf.subarray(at)]) : head;
    const toUpstream = this.pending;
    this.pending = null;
    this.host.tunnel(exchange, socket, upstream, toClient, toUpstream);
  }

  // ------------------------------------------------------------------ answers of tether's own, and closes (client-close.ts)

  answer(status: number, detail: string, outcome: Outcome, reason: string): void {
    answerInstead(this, status, detail, outcome, reason);
  }

  releaseParser(): void {
    if (this.#req === null) return;
    this.#req.reset();
    this.host.giveRequestParser(this.#req);
    this.#req = null;
  }
}

/** The connection a client socket belongs to; undefined once it is a tunnel's. */
export function connectionOf(socket: ClientSocket): HttpConnection | undefined {
  return (socket as ConnectionSocket)[kConnection];
}

function onClientEnd(this: ClientSocket): void {
  const connection = connectionOf(this);
  if (connection !== undefined) handleClientEnd(connection);
}

function onClientDrain(this: ClientSocket): void {
  connectionOf(this)?.onClientDrain();
}

function onClientClose(this: ClientSocket): void {
  const connection = connectionOf(this);
  if (connection !== undefined) handleClientClose(connection);
}

function onClientError(): void {
  // 'close' follows.
}
