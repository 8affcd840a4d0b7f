import type { ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Outcome } from '../types.js';
import { clientOf, noneInFlight, ownResponse, type ClientInfo, type ClientSocket } from './client.js';
import { errorResponse } from './headers.js';

/** What answering node:http's parse errors needs from the listener. */
export interface RefusalHost {
  reject(info: ClientInfo, outcome: Outcome, reason: string): void;
  /** What waits on this connection may go now. */
  afterExchange(socket: ClientSocket, info: ClientInfo): void;
}

/** After a refusal: close once the client has sent nothing for this long ... */
const LINGER_QUIET_MS = 500;
/** ... or after this long in all. */
const LINGER_MAX_MS = 5_000;

/**
 * node:http's 'clientError': a head it cannot parse (400), too large (431) or too slow
 * (408), answered once whatever was routed before it on this connection is.
 */
export function clientError(host: RefusalHost, err: NodeJS.ErrnoException, socket: net.Socket): void {
  const info = clientOf(socket);
  // Answered already: node:http reports each chunk that follows as the same error.
  if (info !== undefined && info.lingerUntil > 0) return lingered(socket, info);
  // An answer is already waiting its turn.
  if (info !== undefined && info.deferred !== null) return;
  const code = err.code ?? '';
  // Bytes after a request that closes the connection (Connection: close, HTTP/1.0):
  // that request was routed and is being answered, and node:http closes once it
  // is. What follows is dropped, unanswered (RFC 9112 9.6).
  if (code === 'HPE_CLOSED_CONNECTION') return;
  let status = 400;
  let outcome: Outcome = 'bad_request';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    outcome = 'timeout';
  } else if (code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
  } else if (code === 'ECONNRESET' || code === 'EPIPE' || !code.startsWith('HPE_')) {
    // The client went away: nobody to answer.
    socket.destroy();
    return;
  }
  if (info !== undefined) host.reject(info, outcome, `${status}: ${code} ${err.message}`);
  const answer = errorResponse(status, status === 408 ? 'request head not received in time' : status === 431 ? 'request head too large' : 'malformed request');
  if (info !== undefined && deferBehindRouted(socket, info, answer, null, () => host.afterExchange(socket, info))) return;
  // A response already under way on this connection cannot be followed by ours.
  const busy = (socket as net.Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  // node:http's parser still reads this socket (and drops what follows): no resume.
  if (socket.writable && (busy === undefined || busy === null || !busy.headersSent)) answerAndClose(socket, info, answer, status === 408, false);
  else socket.destroy();
}

/**
 * Write tether's own answer and close: at once (`now`), or after a lingering close.
 * `resume`: the socket must be made to flow (node:http no longer reads it, or it was
 * paused while the answer waited its turn).
 */
export function answerAndClose(socket: net.Socket, info: ClientInfo | undefined, answer: Buffer, now: boolean, resume = true): void {
  socket.end(answer);
  // A client too slow to send a head is let go at once, as is one that has closed its side.
  if (now || info === undefined || socket.readableEnded) socket.destroySoon();
  else {
    // What follows is read and dropped while lingering.
    if (resume) socket.resume();
    linger(socket, info);
  }
}

/**
 * Lingering close (nginx's lingering_close, for the same reason): a client may
 * still be sending the rest of a bad request when its answer goes out. Closed at
 * once, the socket would meet those bytes with a reset, and a client whose write
 * fails on it (EPIPE) drops the answer unread. So after our FIN (the socket is
 * half-open) the rest is read and dropped until the client closes, is quiet for
 * LINGER_QUIET_MS, or LINGER_MAX_MS have passed.
 */
function linger(socket: net.Socket, info: ClientInfo): void {
  info.lingerUntil = performance.now() + LINGER_MAX_MS;
  info.lingerTimer = setTimeout(destroySocket, LINGER_QUIET_MS, socket);
  socket.once('end', onLingerEnd);
}

/**
 * A chunk arrived on a connection whose refusal is out (node:http reports each one
 * as the same parse error): close once the linger is over, else wait again.
 */
function lingered(socket: net.Socket, info: ClientInfo): void {
  if (performance.now() >= info.lingerUntil) socket.destroy();
  else info.lingerTimer?.refresh();
}

/**
 * A refusal behind requests already routed on this connection: those are answered
 * first, then `answer`, then the close (responses stay in order, and a request that
 * ran is never answered with an error). A request whose body broke off cannot be
 * answered: its upstream request is aborted. A response node:http makes itself is
 * waited for too (`refused`: the refused request's own, never written; `recheck`
 * runs once it is out). False when nothing is to be written before `answer`.
 */
export function deferBehindRouted(
  socket: net.Socket,
  info: ClientInfo,
  answer: Buffer,
  refused: ServerResponse | null,
  recheck: () => void,
): boolean {
  if (info.exchanges !== null) for (const exchange of info.exchanges) if (!exchange.req.complete) exchange.onClientAborted();
  const own = ownResponse(socket, info, refused);
  if (noneInFlight(info) && own === null) return false;
  info.deferred = answer;
  socket.pause();
  // After node:http's own 'finish' work (it closes the connection after a 400 of its own).
  if (own !== null) own.once('finish', () => setImmediate(recheck));
  return true;
}

function destroySocket(socket: net.Socket): void {
  socket.destroy();
}

/** The client closed its side while we lingered: nothing more to drop. */
function onLingerEnd(this: net.Socket): void {
  this.destroy();
}
