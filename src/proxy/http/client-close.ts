import type { Outcome } from '../types.js';
import type { Exchange } from './exchange.js';
import type { RequestHead } from './h1/index.js';
import { errorResponse } from './headers.js';
import { LingeringClose } from './lingering-close.js';
import { CLOSING, DONE, EXCHANGE, HEAD, IDLE, type ClientConnection, type ClientSocket, type ConnectionHost } from './types.js';
import type { UpstreamSide } from './upstream-side.js';

/**
 * How a client connection in http mode closes: tether's own answers (a request
 * refused before routing; 502, 503 or 400 instead of a response), each followed by
 * a lingering close (lingering-close.ts); the client ending its side; its socket
 * closing. This file knows a connection only by the members below.
 */

/** What closing reads and changes of a client connection (connection.ts implements it). */
export interface ClosingClient extends ClientConnection {
  readonly socket: ClientSocket;
  readonly host: ConnectionHost;
  phase: number;
  readonly exchange: Exchange | null;
  /** The head of the request being read or under way. */
  readonly request: RequestHead;
  readonly requestDone: boolean;
  /** The upstream half, once a request was routed. */
  readonly upstreamSide: UpstreamSide | null;
  /** Client bytes read and not yet relayed or parsed (the next requests). */
  pending: Buffer | null;
  /** The client has ended its side. */
  clientEnded: boolean;
  /** tether's own answer is out; the client's bytes are read and dropped a while. */
  linger: LingeringClose | null;
  close(reason: string): void;
  /** The exchange is over: its upstream released, counted and logged. */
  endExchange(): void;
  /** The request parser goes back to the listener. */
  releaseParser(): void;
}

/** tether's own answer to a routed request (502, 503, 400 for a bad body); the connection then closes. */
export function answerInstead(client: ClosingClient, status: number, detail: string, outcome: Outcome, reason: string): void {
  const exchange = client.exchange!;
  exchange.status = status;
  exchange.outcome = outcome;
  exchange.reason = reason;
  const upstream = client.upstreamSide!;
  if (upstream.responseStarted) {
    client.socket.destroy();
    return;
  }
  const answer = errorResponse(status, detail);
  exchange.toClient += answer.length;
  upstream.drop();
  client.endExchange();
  answerAndClose(client, answer, false);
}

/** A request refused before routing: counted, answered, closed. `now`: no lingering (a client too slow for its head). */
export function refuse(client: ClosingClient, status: number, outcome: Outcome, reason: string, detail: string, now: boolean): void {
  client.host.reject(client, outcome, reason);
  answerAndClose(client, errorResponse(status, detail), now);
}

/** Write tether's own answer (null: none, the response just sent closes it) and close, lingering (lingering-close.ts). */
export function answerAndClose(client: ClosingClient, answer: Buffer | null, now: boolean): void {
  client.phase = CLOSING;
  client.pending = null;
  client.releaseParser();
  client.linger = LingeringClose.start(client.socket, answer, now || client.clientEnded);
}

/** The client ended its side ('end'). */
export function handleClientEnd(client: ClosingClient): void {
  client.clientEnded = true;
  if (client.phase === CLOSING) {
    client.socket.destroy();
    return;
  }
  // Bytes kept for later are still to be answered; the end is acted on after them.
  if (client.pending !== null) return;
  clientEndedNow(client);
}

/** The client has sent all it will, and every byte of it has been taken. */
export function clientEndedNow(client: ClosingClient): void {
  switch (client.phase) {
    case IDLE:
      client.socket.end();
      client.socket.destroySoon();
      return;
    case HEAD:
      // Nothing but empty lines before the end: nothing was asked.
      if (client.request.bytes.length === 0) {
        client.socket.end();
        client.socket.destroySoon();
        return;
      }
      refuse(client, 400, 'bad_request', '400: connection ended inside a request head', 'incomplete request', true);
      return;
    case EXCHANGE:
      // Cut off mid-body: the upstream must not wait for the rest.
      if (!client.requestDone) client.close('client aborted the request');
      return;
  }
}

/** The client socket closed ('close'): the exchange under way ends, everything of it upstream closes. */
export function handleClientClose(client: ClosingClient): void {
  const previous = client.phase;
  client.phase = DONE;
  client.linger?.stop();
  client.linger = null;
  if (client.exchange !== null) {
    client.upstreamSide?.drop();
    if (!client.exchange.reason) client.exchange.reason = previous === CLOSING ? 'answered' : 'client closed';
    client.endExchange();
  }
  client.upstreamSide?.close();
  client.pending = null;
  client.releaseParser();
  client.host.released(client);
}
