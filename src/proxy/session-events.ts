import type { OpeningPhase } from './context.js';
import { idleClock } from './idle.js';
import { copyRead, relayRead, type RelaySocket } from './relay.js';

/**
 * The socket events of a relayed connection (session.ts), as module-level handlers
 * that find their session through a symbol on the socket (as ws does), so a
 * connection costs no closures. This file knows a session only by the members below.
 */

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 2;

export const kSession = Symbol('tether.session');
export type SessionSocket = RelaySocket & { [kSession]?: SessionEvents };

/** What the handlers read and call on a session (session.ts implements it). */
export interface SessionEvents {
  readonly client: RelaySocket;
  readonly upstreamSocket: RelaySocket | null;
  readonly state: number;
  readonly opening: OpeningPhase | null;
  reason: string;
  lastError: string;
  toClient: number;
  activeAt: number;
  upstreamFor(bytes: number): RelaySocket | null;
  onEarlyEnd(): void;
  onConnected(): void;
  onConnectTimeout(): void;
  onConnectFailed(): void;
  onClientGone(): void;
  onUpstreamGone(hadError: boolean): void;
}

function sessionOf(socket: RelaySocket): SessionEvents {
  return (socket as SessionSocket)[kSession]!;
}

export function onEarlyEnd(this: RelaySocket): void {
  sessionOf(this).onEarlyEnd();
}

/** The read callback of a relayed client socket (given by the Acceptor; an upgraded http connection's, passed on). */
export function onClientRead(this: RelaySocket, nread: number, buffer: Buffer): boolean {
  const s = sessionOf(this);
  if (s.state === OPEN) {
    const upstream = s.upstreamFor(nread);
    return upstream !== null && relayRead(upstream, nread, buffer);
  }
  const phase = s.opening;
  // false: paused (bytes read after a phase ended wait in the kernel).
  return phase !== null && phase.push(copyRead(nread, buffer));
}

export function onUpstreamRead(this: RelaySocket, nread: number, buffer: Buffer): boolean {
  const s = sessionOf(this);
  s.toClient += nread;
  s.activeAt = idleClock.now;
  const client = s.client;
  if (client.destroyed) return false;
  return relayRead(client, nread, buffer);
}

export function onClientEnd(this: RelaySocket): void {
  const s = sessionOf(this);
  if (!s.reason) s.reason = 'client closed';
  const upstream = s.upstreamSocket;
  if (upstream) passFin(upstream);
}

export function onClientDrain(this: RelaySocket): void {
  const upstream = sessionOf(this).upstreamSocket;
  if (upstream && !upstream.destroyed) upstream.resume();
}

export function onClientError(this: RelaySocket, err: NodeJS.ErrnoException): void {
  const s = sessionOf(this);
  if (!s.reason) s.reason = `client error: ${err.code ?? err.message}`;
}

export function onClientClose(this: RelaySocket): void {
  sessionOf(this).onClientGone();
}

export function onUpstreamConnect(this: RelaySocket): void {
  const s = sessionOf(this);
  if (s.upstreamSocket !== this || s.state !== CONNECTING) return;
  s.onConnected();
}

export function onUpstreamEnd(this: RelaySocket): void {
  const s = sessionOf(this);
  if (!s.reason) s.reason = 'upstream closed';
  passFin(s.client);
}

/**
 * Send a FIN on `socket` (its peer's FIN went the other way). When that peer has
 * already sent its own FIN and nothing is left to write, closing the socket sends the
 * same FIN (nothing unread, so no reset) and saves a shutdown call per connection.
 */
export function passFin(socket: RelaySocket): void {
  if (socket.destroyed || socket.writableEnded) return;
  if (socket.readableEnded && socket.writableLength === 0) socket.destroy();
  else socket.end();
}

export function onUpstreamDrain(this: RelaySocket): void {
  const client = sessionOf(this).client;
  if (!client.destroyed) client.resume();
}

export function onConnectTimeout(session: SessionEvents): void {
  session.onConnectTimeout();
}

export function onUpstreamError(this: RelaySocket, err: NodeJS.ErrnoException): void {
  const s = sessionOf(this);
  if (s.upstreamSocket !== this) return;
  s.lastError = err.code ?? err.message;
}

export function onUpstreamClose(this: RelaySocket, hadError: boolean): void {
  const s = sessionOf(this);
  if (s.upstreamSocket !== this) return;
  if (s.state === CONNECTING) {
    s.onConnectFailed();
    return;
  }
  s.onUpstreamGone(hadError);
}
