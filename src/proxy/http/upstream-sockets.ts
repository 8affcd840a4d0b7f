import type { Upstream } from '../../routing/upstream.js';
import { copyRead, type RelaySocket } from '../relay.js';
import { kSession, onUpstreamRead, type SessionSocket } from '../session-events.js';
import { connectUpstream as connectRelayed } from '../upstream-connect.js';

/** What an upstream socket's events are passed to while a request uses it. */
export interface UpstreamUser {
  onUpstreamConnect(): void;
  onUpstreamData(chunk: Buffer): void;
  onUpstreamDrain(): void;
  onUpstreamError(err: NodeJS.ErrnoException): void;
  onUpstreamClose(): void;
}

const kUser = Symbol('tether.upstreamUser');
const kIdleSince = Symbol('tether.idleSince');

/** What http mode uses of an upstream connection: a HandleSocket, or a net.Socket (upstream-connect.ts). */
export interface UpstreamStream extends RelaySocket {
  /** Not ended and not destroyed. */
  readonly writable: boolean;
  /** A write was refused (queued past the high-water mark) and 'drain' has not followed yet. */
  readonly writableNeedDrain: boolean;
  destroy(error?: Error): unknown;
}

/** An upstream connection of http mode: its events go to its current user, if any. */
export type UpstreamSocket = UpstreamStream & { [kUser]?: UpstreamUser | null; [kIdleSince]?: number };

/** Idle connections kept per upstream; more are closed. */
const MAX_IDLE_PER_UPSTREAM = 256;
/**
 * An idle connection is closed after this long unused: below the keep-alive timeouts
 * of common servers (Node's 5 s), so tether is rarely the one to send on a
 * connection its upstream is closing.
 */
const IDLE_MS = 3_000;
const SWEEP_MS = 1_000;

/**
 * Open a connection to `upstream` for `user` (with `preamble`, a PROXY header, first).
 * Its listeners are set once, here, and find their user through a symbol, so reusing
 * a connection only changes who that is.
 */
export function connectUpstream(upstream: Upstream, user: UpstreamUser, preamble: Buffer | null): UpstreamSocket {
  const socket = connectRelayed(upstream, onRead, 'kept-alive') as UpstreamSocket;
  socket[kUser] = user;
  socket.on('connect', onConnect);
  socket.on('drain', onDrain);
  socket.on('error', onError);
  socket.on('close', onClose);
  if (preamble !== null) socket.write(preamble);
  return socket;
}

/** Hand the connection to `user` (null: nobody; data or a close then only end it). */
export function setUser(socket: UpstreamSocket, user: UpstreamUser | null): void {
  socket[kUser] = user;
}

/** Take the connection away from relaying for good (a tunnel's Session reads it from now on, through `onRead`). */
export function detachUpstream(socket: UpstreamSocket): void {
  socket[kUser] = null;
  socket.removeListener('connect', onConnect);
  socket.removeListener('drain', onDrain);
  socket.removeListener('error', onError);
  socket.removeListener('close', onClose);
}

/** Whether a connection can carry another request. */
export function reusable(socket: UpstreamSocket): boolean {
  return !socket.destroyed && socket.writable && !socket.readableEnded && socket.writableLength === 0;
}

/**
 * Upstream connections kept alive between requests and shared by every client of a
 * listener (nginx `keepalive`, HAProxy `http-reuse safe`): the most recently used
 * first, so a burst's connections stay warm and the rest time out.
 */
export class UpstreamSockets {
  readonly #idle = new Map<Upstream, UpstreamSocket[]>();
  #timer: NodeJS.Timeout | null = null;

  /** An idle connection to `upstream`, now `user`'s, or null. */
  take(upstream: Upstream, user: UpstreamUser): UpstreamSocket | null {
    const list = this.#idle.get(upstream);
    if (list === undefined) return null;
    while (list.length > 0) {
      const socket = list.pop()!;
      if (!reusable(socket)) continue;
      socket[kUser] = user;
      return socket;
    }
    return null;
  }

  /** Keep a connection whose response is done for the next request to `upstream`. */
  put(upstream: Upstream, socket: UpstreamSocket): void {
    socket[kUser] = null;
    let list = this.#idle.get(upstream);
    if (list === undefined) this.#idle.set(upstream, (list = []));
    if (list.length >= MAX_IDLE_PER_UPSTREAM || upstream.removed) {
      socket.destroy();
      return;
    }
    socket[kIdleSince] = performance.now();
    // Read on while idle, so a close (or stray bytes) is seen at once.
    socket.resume();
    list.push(socket);
    if (this.#timer === null) {
      this.#timer = setInterval(sweepIdle, SWEEP_MS, this);
      this.#timer.unref();
    }
  }

  /** Close every idle connection. */
  closeAll(): void {
    for (const list of this.#idle.values()) for (const socket of list) socket.destroy();
    this.#idle.clear();
    this.#stop();
  }

  sweep(): void {
    const limit = performance.now() - IDLE_MS;
    for (const [upstream, list] of this.#idle) {
      let kept = 0;
      for (const socket of list) {
        if (reusable(socket) && (socket[kIdleSince] ?? 0) > limit && !upstream.removed) list[kept++] = socket;
        else socket.destroy();
      }
      list.length = kept;
      if (kept === 0) this.#idle.delete(upstream);
    }
    if (this.#idle.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

function sweepIdle(sockets: UpstreamSockets): void {
  sockets.sweep();
}

function onConnect(this: UpstreamSocket): void {
  this[kUser]?.onUpstreamConnect();
}

/** Every read of an upstream connection: to its user (a copy it may keep), to the tunnel it became, or nowhere. */
function onRead(this: UpstreamSocket, nread: number, buffer: Buffer): boolean {
  const user = this[kUser];
  if (user !== null && user !== undefined) {
    user.onUpstreamData(copyRead(nread, buffer));
    return true;
  }
  if ((this as SessionSocket)[kSession] !== undefined) return onUpstreamRead.call(this, nread, buffer);
  // An idle connection has nothing to say (a 408 before it closes, say): it is done.
  this.destroy();
  return false;
}

function onDrain(this: UpstreamSocket): void {
  this[kUser]?.onUpstreamDrain();
}

function onError(this: UpstreamSocket, err: NodeJS.ErrnoException): void {
  this[kUser]?.onUpstreamError(err);
}

function onClose(this: UpstreamSocket): void {
  this[kUser]?.onUpstreamClose();
}
