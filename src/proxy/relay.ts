import net from 'node:net';

/**
 * Read buffers for relayed sockets, so moving bytes allocates nothing per chunk.
 *
 * Node's default read path mallocs a fresh 64 KiB buffer for every read. At a gigabyte
 * a second that is tens of megabytes of short-lived external memory per scavenge, and
 * V8 answers with back-to-back mark-compacts (seen in tether under iperf3: 60 in 3 s,
 * a third of the CPU). Sockets created with `onread` read into a buffer we give them
 * instead, chosen after every read by `nextReadBuffer`:
 *
 * - A quiet connection reads into one buffer shared by every quiet socket. Its bytes
 *   are copied out (a pool slice for small reads) before the callback returns, since
 *   the next socket to read overwrites them; an idle connection holds no buffer.
 * - A read of BURST_BYTES or more means a transfer is under way: the socket gets a
 *   buffer of its own and its reads are written on as they are, without a copy.
 *   While such a write is still queued (the peer's kernel buffer was full), the
 *   socket stops reading, so the buffer is never overwritten under the pending
 *   write; 'drain' resumes it. A short read hands the buffer back to the free list.
 *
 * Each relayed socket gets a writable high-water mark of 1 byte (tcp mode's Acceptor
 * gives its sockets the same), so `write()` returns false, and 'drain' follows,
 * exactly when bytes are left queued.
 */

/**
 * A socket as relaying uses it: a net.Socket, or a connection served on its TCP
 * handle (net/handle-socket.ts), which behaves alike in all that is named here.
 */
export interface RelaySocket {
  readonly destroyed: boolean;
  /** The peer's FIN was read. */
  readonly readableEnded: boolean;
  /** `end()` was called. */
  readonly writableEnded: boolean;
  /** Bytes queued and not yet taken by the kernel. */
  readonly writableLength: number;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  /** False when bytes are left queued ('drain' follows): the relay's high-water mark of 1. */
  write(data: Buffer): boolean;
  end(): unknown;
  destroy(): unknown;
  resetAndDestroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  cork(): void;
  uncork(): void;
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown;
  on(event: 'close', listener: (hadError: boolean) => void): unknown;
  on(event: 'end' | 'drain' | 'connect', listener: () => void): unknown;
  removeListener(event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown;
  removeListener(event: 'close', listener: (hadError: boolean) => void): unknown;
  removeListener(event: 'end' | 'drain' | 'connect', listener: () => void): unknown;
}

const BUFFER_BYTES = 256 * 1024;
/** A read this large starts a burst: the socket reads into a buffer of its own. */
const BURST_BYTES = 16 * 1024;
/** A read smaller than this ends a burst. */
const QUIET_BYTES = 4 * 1024;
/** Buffers kept for the next burst; more are left to the garbage collector. */
const FREE_LIMIT = 32;

/**
 * The write high-water mark of every relayed socket: `write()` is false, and 'drain'
 * follows, exactly when bytes are left queued.
 */
export const RELAY_HIGH_WATER_MARK = 1;

const shared = Buffer.allocUnsafeSlow(BUFFER_BYTES);
const free: Buffer[] = [];
/** Set by `relayRead` for the read that follows; taken by `nextReadBuffer`. */
let next: Buffer = shared;

/**
 * The buffer the socket whose read was just handled reads into next. Node calls it
 * right after the read callback (and once when a socket's handle is set up), so a
 * module variable carries the choice without a closure per socket.
 */
export function nextReadBuffer(): Buffer {
  const buffer = next;
  next = shared;
  return buffer;
}

function ownBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES);
}

/**
 * Write `nread` bytes just read into `buffer` on to `destination`. Returns false when
 * the reading socket must pause until `destination` emits 'drain'.
 */
export function relayRead(destination: RelaySocket, nread: number, buffer: Buffer): boolean {
  if (buffer === shared) {
    const copy = Buffer.allocUnsafe(nread);
    shared.copy(copy, 0, 0, nread);
    if (nread >= BURST_BYTES) next = ownBuffer();
    return destination.write(copy);
  }
  if (!destination.write(buffer.subarray(0, nread))) {
    // The queued write still reads from `buffer`: keep it, read again after 'drain'.
    next = buffer;
    return false;
  }
  if (destination.writableLength > 0) {
    // Queued below the destination's high-water mark (a socket we did not create):
    // the pending write keeps this buffer, the next read gets another.
    next = ownBuffer();
    return true;
  }
  if (nread < QUIET_BYTES) {
    if (free.length < FREE_LIMIT) free.push(buffer);
    return true;
  }
  next = buffer;
  return true;
}

/**
 * Copy bytes read into a relay buffer that must outlive the read callback (a PROXY
 * header being parsed, bytes kept until the upstream connects).
 */
export function copyRead(nread: number, buffer: Buffer): Buffer {
  const copy = Buffer.allocUnsafe(nread);
  buffer.copy(copy, 0, 0, nread);
  // The socket keeps reading into the buffer it has (shared or its own).
  next = buffer;
  return copy;
}

export type ReadCallback = (this: net.Socket, nread: number, buffer: Buffer) => boolean;

/**
 * Options for a socket whose reads go to `callback` instead of 'data' events (Node's
 * Readable machinery and a fresh buffer per read are skipped); the callback hands the
 * bytes on with `relayRead`, or keeps them with `copyRead`.
 */
export function readOptions(callback: ReadCallback): { onread: net.OnReadOpts } {
  return { onread: { buffer: nextReadBuffer, callback: callback as net.OnReadOpts['callback'] } };
}

/** Options for a socket that reads through `relayRead`. */
export function relaySocketOptions(callback: ReadCallback): { onread: net.OnReadOpts; writableHighWaterMark: number } {
  return { ...readOptions(callback), writableHighWaterMark: RELAY_HIGH_WATER_MARK };
}

interface HandleOwner {
  _handle: { useUserBuffer?: (buffer: Buffer) => void } | null;
}

/** The symbols under which a net.Socket keeps its `onread` options. */
interface ReadOptionKeys {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol;
}

function findReadOptionKeys(): ReadOptionKeys | null {
  const probe = new net.Socket();
  const keys = new Map(Object.getOwnPropertySymbols(probe).map((key) => [key.description, key]));
  probe.destroy();
  const buffer = keys.get('kBuffer');
  const callback = keys.get('kBufferCb');
  const generator = keys.get('kBufferGen');
  return buffer && callback && generator ? { buffer, callback, generator } : null;
}

const readOptionKeys = findReadOptionKeys();

export type AcceptedRelayMethod = 'in-place' | 'adopt';

/** How `relayAccepted` gives accepted sockets relay buffers on this Node. */
export const acceptedRelayMethod: AcceptedRelayMethod = readOptionKeys === null ? 'adopt' : 'in-place';
let method: AcceptedRelayMethod = acceptedRelayMethod;

/** For tests: take the `adopt` path even where `in-place` works. */
export function useAcceptedRelayMethod(chosen: AcceptedRelayMethod): void {
  method = chosen === 'in-place' && readOptionKeys === null ? 'adopt' : chosen;
}

/**
 * Make an accepted (paused) socket read into relay buffers. Node 20's net.Server
 * ignores `onread` for the sockets it accepts (Node 22's too), so it is set up
 * afterwards: in place, by setting the three fields the socket's constructor would
 * have set from `onread` and pointing the handle at the buffer (what the constructor
 * does next); or, where this Node keeps those fields under other names, by moving the
 * handle into a socket built with `onread` (`adoptAccepted`). In place costs nothing;
 * moving costs a second socket object per connection. Returns null when the
 * connection is already gone.
 */
export function relayAccepted(accepted: net.Socket, callback: ReadCallback): net.Socket | null {
  const handle = (accepted as unknown as HandleOwner)._handle;
  if (handle === null || handle === undefined || accepted.destroyed) return null;
  if (method === 'in-place' && readOptionKeys !== null && typeof handle.useUserBuffer === 'function') {
    const fields = accepted as unknown as Record<symbol, unknown>;
    const buffer = nextReadBuffer();
    fields[readOptionKeys.buffer] = buffer;
    fields[readOptionKeys.generator] = nextReadBuffer;
    fields[readOptionKeys.callback] = callback;
    handle.useUserBuffer(buffer);
    return accepted;
  }
  return adoptAccepted(accepted, callback);
}

/**
 * The accepted handle moved into a socket built with `onread`; the shell it came in
 * is destroyed without closing the handle. The socket comes back paused, as with
 * pauseOnConnect.
 */
function adoptAccepted(accepted: net.Socket, callback: ReadCallback): net.Socket {
  const shell = accepted as unknown as HandleOwner;
  const handle = shell._handle;
  shell._handle = null;
  accepted.destroy();
  const options = {
    handle,
    allowHalfOpen: true,
    pauseOnCreate: true,
    readable: true,
    writable: true,
    ...relaySocketOptions(callback),
  };
  // TCP_NODELAY is already on the handle (the Acceptor's noDelay option).
  return new net.Socket(options as net.SocketConstructorOpts);
}
