import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import {
  handleConnectsAvailable,
  handlesInUse,
  streamWrap,
  systemError,
  tcpWrap,
  UV_ENOTCONN,
  UV_EOF,
  type AddressOut,
  type ShutdownRequest,
  type TcpHandle as BareHandle,
  type WriteRequest,
} from './tcp-binding.js';

/**
 * A connection served on its TCP handle (the libuv stream under every `net.Socket`),
 * with the part of net.Socket's surface a relay uses and none of its machinery: no
 * Duplex state, no async-id bookkeeping, no buffer per read, no WriteWrap per write
 * that completes at once. `net.Socket` costs ~30 CPU µs per connection on top of the
 * system calls (docs/performance.md, "What a connection costs Node"); a connection
 * served this way costs what its system calls do.
 *
 * Behaves as a `net.Socket` accepted with allowHalfOpen and pauseOnConnect, read
 * through `onread` with a writable high-water mark of 1:
 * - reads go to the read callback (relay buffers, relay.ts), from `resume()` on;
 * - `write()` is false exactly when bytes are left queued, and 'drain' follows;
 * - the client's FIN is 'end'; `end()` sends ours once queued writes are out;
 *   with both done the socket closes (autoDestroy), as does `destroy()`; 'close'
 *   follows once the handle is closed; a read or write error is 'error' then 'close'.
 *
 * The handles come from `process.binding('tcp_wrap')`'s server handle (Acceptor);
 * where this Node does not expose them (net/tcp-binding.ts), connections are
 * served on net.Socket as before.
 */

/** The read callback: `nread` bytes are in `buffer`; false pauses reading. */
export type HandleReadCallback = (this: HandleSocket, nread: number, buffer: Buffer) => boolean;

const kOwner = Symbol('tether.handleSocket');

/** A handle, and the socket serving it (found from the handle's callbacks). */
export type TcpHandle = BareHandle & { [kOwner]?: HandleSocket };
/**
 * A request object for the next write. One that a write used only synchronously (all
 * bytes taken at once) was never bound to a libuv request and serves the next write too.
 */
let spareWrite: WriteRequest | null = null;

function takeWriteRequest(handle: TcpHandle): WriteRequest {
  const req = spareWrite ?? new streamWrap!.WriteWrap();
  spareWrite = null;
  req.handle = handle;
  req.oncomplete = onWriteComplete;
  req.buffer = null;
  return req;
}

export class HandleSocket extends EventEmitter {
  #handle: TcpHandle | null;
  readonly #onRead: HandleReadCallback;
  /** The buffer the handle reads into next. */
  #buffer: Buffer;
  readonly #nextBuffer: () => Buffer;
  #reading = false;
  /** The peer's FIN was read. */
  #readEnded = false;
  /** Our FIN is queued (`end()`), and once `#finished`, sent. */
  #ending = false;
  #finished = false;
  #destroyAfterFinish = false;
  /** A write returned false: 'drain' is owed once the queue empties. */
  #needDrain = false;
  #corked = 0;
  #corkedChunks: Buffer[] | null = null;
  destroyed = false;
  /**
   * false: the peer's FIN is answered with ours once read (as a net.Socket without
   * allowHalfOpen), so the socket closes; true (the default): only 'end' is emitted.
   */
  allowHalfOpen = true;
  /** An outgoing connection not yet established ('connect' follows, or 'error' and 'close'). */
  connecting = false;
  /** `pause()` while connecting: not read once connected (as net.Socket). */
  #startPaused = false;
  /** `end()` while connecting: our FIN goes once connected. */
  #endOnConnect = false;
  #peer: AddressOut | null = null;
  #local: AddressOut | null = null;

  /**
   * Serve `handle` (accepted, not yet reading): reads go to `onRead` with the buffer
   * from `nextBuffer()`, asked again after every read. Nothing is read until `resume()`.
   */
  constructor(handle: TcpHandle, onRead: HandleReadCallback, nextBuffer: () => Buffer) {
    super();
    this.#handle = handle;
    this.#onRead = onRead;
    this.#nextBuffer = nextBuffer;
    this.#buffer = nextBuffer();
    handle[kOwner] = this;
    handle.onread = onHandleRead;
    handle.useUserBuffer(this.#buffer);
  }

  /**
   * Connect to `address` (an IPv4 or IPv6 address, `family` 4 or 6) on `port`:
   * 'connect' once established (with TCP_NODELAY on), else 'error' then 'close'.
   * Reads go to `onRead` from `resume()` on, as for an accepted handle.
   */
  static connect(address: string, port: number, family: 4 | 6, onRead: HandleReadCallback, nextBuffer: () => Buffer, allowHalfOpen = true): HandleSocket {
    const handle = new tcpWrap!.TCP(tcpWrap!.constants.SOCKET);
    const socket = new HandleSocket(handle, onRead, nextBuffer);
    socket.allowHalfOpen = allowHalfOpen;
    socket.connecting = true;
    // Writes made before the connection is up leave with the first write after it.
    socket.cork();
    const req = new tcpWrap!.TCPConnectWrap();
    req.oncomplete = onConnectComplete;
    req.address = address;
    req.port = port;
    const err = family === 4 ? handle.connect(req, address, port) : handle.connect6(req, address, port);
    if (err !== 0) process.nextTick(failConnect, socket, err);
    return socket;
  }

  /** The connect attempt ended. */
  connected(handle: TcpHandle, status: number): void {
    if (handle !== this.#handle || !this.connecting) return;
    this.connecting = false;
    if (status !== 0) {
      this.destroy(systemError(status, 'connect'));
      return;
    }
    handle.setNoDelay(true);
    this.uncork();
    if (this.#endOnConnect) this.#shutdown(handle);
    this.emit('connect');
    if (!this.#startPaused && !this.destroyed) this.resume();
  }

  /** Not ended by `end()` and not destroyed. */
  get writable(): boolean {
    return !this.#ending && !this.destroyed;
  }

  /** The peer's FIN was read ('end' emitted). */
  get readableEnded(): boolean {
    return this.#readEnded;
  }

  /** `end()` was called. */
  get writableEnded(): boolean {
    return this.#ending;
  }

  /** Bytes queued and not yet taken by the kernel. */
  get writableLength(): number {
    const handle = this.#handle;
    let length = handle === null ? 0 : handle.writeQueueSize;
    if (this.#corkedChunks !== null) for (const chunk of this.#corkedChunks) length += chunk.length;
    return length;
  }

  /** A write returned false (or a corked writev was queued) and 'drain' has not followed yet. */
  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }

  get remoteAddress(): string | undefined {
    return this.#peerInfo().address;
  }

  get remotePort(): number | undefined {
    return this.#peerInfo().port;
  }

  get localAddress(): string | undefined {
    return this.#localInfo().address;
  }

  get localPort(): number | undefined {
    return this.#localInfo().port;
  }

  #peerInfo(): AddressOut {
    return (this.#peer ??= addressOf(this.#handle, 'getpeername')) ?? NO_ADDRESS;
  }

  #localInfo(): AddressOut {
    return (this.#local ??= addressOf(this.#handle, 'getsockname')) ?? NO_ADDRESS;
  }

  pause(): this {
    if (this.connecting) this.#startPaused = true;
    else if (this.#reading && this.#handle !== null) {
      this.#reading = false;
      this.#handle.readStop();
    }
    return this;
  }

  resume(): this {
    if (this.connecting) this.#startPaused = false;
    else if (!this.#reading && !this.#readEnded && this.#handle !== null) {
      this.#reading = true;
      const err = this.#handle.readStart();
      if (err !== 0) this.destroy(systemError(err, 'read'));
    }
    return this;
  }

  /** False when bytes are left queued: 'drain' follows once they are out. */
  write(data: Buffer): boolean {
    const handle = this.#handle;
    if (handle === null || this.#ending) return false;
    if (this.#corked > 0) {
      (this.#corkedChunks ??= []).push(data);
      return true;
    }
    const req = takeWriteRequest(handle);
    return this.#afterWrite(req, handle.writeBuffer(req, data), data);
  }

  cork(): void {
    this.#corked++;
  }

  /** The writes made while corked leave in one writev. */
  uncork(): void {
    if (this.#corked === 0 || --this.#corked > 0) return;
    const chunks = this.#corkedChunks;
    this.#corkedChunks = null;
    const handle = this.#handle;
    if (chunks === null || handle === null) return;
    const req = takeWriteRequest(handle);
    if (chunks.length === 1) this.#afterWrite(req, handle.writeBuffer(req, chunks[0]!), chunks[0]!);
    else this.#afterWrite(req, handle.writev(req, chunks, true), chunks);
  }

  #afterWrite(req: WriteRequest, err: number, data: Uint8Array | Uint8Array[]): boolean {
    if (err !== 0) {
      this.destroy(systemError(err, 'write'));
      return false;
    }
    if (streamWrap!.streamBaseState[streamWrap!.kLastWriteWasAsync] === 0) {
      spareWrite = req;
      return true;
    }
    req.buffer = data;
    this.#needDrain = true;
    return false;
  }

  /** A queued write went out (or failed). */
  writeDone(req: WriteRequest, status: number): void {
    req.buffer = null;
    const handle = this.#handle;
    if (handle === null || req.handle !== handle) return;
    if (status < 0) {
      this.destroy(systemError(status, 'write'));
      return;
    }
    if (this.#needDrain && handle.writeQueueSize === 0) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }

  /** Send our FIN after what is queued (`data` first, if given). */
  end(data?: Buffer): this {
    if (data !== undefined) this.write(data);
    const handle = this.#handle;
    if (this.#ending || handle === null) return this;
    this.#ending = true;
    if (this.connecting) {
      // Writes and the FIN can only follow the connection: they go once it is up (as net.Socket's _final waits for 'connect').
      this.#endOnConnect = true;
      return this;
    }
    if (this.#corked > 0) {
      this.#corked = 1;
      this.uncork();
    }
    this.#shutdown(handle);
    return this;
  }

  #shutdown(handle: TcpHandle): void {
    const req = new streamWrap!.ShutdownWrap();
    req.handle = handle;
    req.oncomplete = onShutdownComplete;
    const err = handle.shutdown(req);
    if (err === 1 || err === UV_ENOTCONN) this.shutdownDone(handle, 0);
    else if (err !== 0) this.destroy(systemError(err, 'shutdown'));
  }

  /** Our FIN is out (or could not be sent). */
  shutdownDone(handle: TcpHandle, status: number): void {
    if (handle !== this.#handle) return;
    if (status < 0 && status !== UV_ENOTCONN) {
      this.destroy(systemError(status, 'shutdown'));
      return;
    }
    this.#finished = true;
    if (this.#readEnded || this.#destroyAfterFinish) this.destroy();
  }

  /** End, and close once our FIN is out. */
  destroySoon(): void {
    if (this.#finished) {
      this.destroy();
      return;
    }
    this.#destroyAfterFinish = true;
    this.end();
  }

  /** Close now: queued writes are dropped; 'error' (when given and listened for), then 'close'. */
  destroy(error?: Error): this {
    const handle = this.#handle;
    if (this.destroyed || handle === null) return this;
    this.#detach(handle);
    this.connecting = false;
    handle.close(() => this.emit('close', error !== undefined));
    if (error !== undefined && this.listenerCount('error') > 0) process.nextTick(emitError, this, error);
    return this;
  }

  /** Close with a reset (RST), not a FIN: an abort passed on as an abort. */
  resetAndDestroy(): this {
    const handle = this.#handle;
    if (this.destroyed || handle === null) return this;
    if (typeof handle.reset !== 'function' || this.connecting) return this.destroy();
    this.#detach(handle);
    const err = handle.reset(() => this.emit('close', false));
    // Not reset (the handle is closing anyway): closed plainly.
    if (err !== 0) handle.close(() => this.emit('close', false));
    return this;
  }

  #detach(handle: TcpHandle): void {
    this.destroyed = true;
    this.#reading = false;
    this.#handle = null;
    handle.onread = onDetachedRead;
    handle[kOwner] = undefined;
  }

  /** The handle read `nread` bytes (or an error, or the end) into the current buffer. */
  read(nread: number): Buffer | undefined {
    if (nread > 0) {
      if (this.destroyed) return undefined;
      const keepReading = this.#onRead(nread, this.#buffer);
      const next = this.#nextBuffer();
      this.#buffer = next;
      if (!keepReading) this.pause();
      return next;
    }
    if (nread === 0) return undefined;
    if (nread !== UV_EOF) {
      this.destroy(systemError(nread, 'read'));
      return undefined;
    }
    this.#readEnded = true;
    this.#reading = false;
    this.emit('end');
    if (this.destroyed) return undefined;
    if (this.#finished) this.destroy();
    else if (!this.allowHalfOpen) this.end();
    return undefined;
  }
}

/**
 * A connection to `host` (an IPv4 or IPv6 address) on `port` made on a handle, or null
 * where none can be made: a host name (net.connect resolves it), a port out of range,
 * or no handles on this Node (or the tests' net.Socket path).
 */
export function connectHandle(host: string, port: number, onRead: HandleReadCallback, nextBuffer: () => Buffer, allowHalfOpen = true): HandleSocket | null {
  const family = isIP(host);
  if (family === 0 || !handleConnectsAvailable || !handlesInUse()) return null;
  // The binding takes the port as it is (70000 would become 4464): net.connect checks it and throws.
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return null;
  return HandleSocket.connect(host, port, family === 4 ? 4 : 6, onRead, nextBuffer, allowHalfOpen);
}

/** What an address getter answers while there is none (a closed handle, a peer gone): asked again next time. */
const NO_ADDRESS: AddressOut = Object.freeze({});

/** The handle's peer or own address, or null when it cannot be read (not cached, so asked again later). */
function addressOf(handle: TcpHandle | null, get: 'getpeername' | 'getsockname'): AddressOut | null {
  if (handle === null) return null;
  const out: AddressOut = {};
  return handle[get](out) === 0 ? out : null;
}

function onHandleRead(this: TcpHandle): Buffer | undefined {
  const socket = this[kOwner];
  if (socket === undefined) return undefined;
  return socket.read(streamWrap!.streamBaseState[streamWrap!.kReadBytesOrError]!);
}

function onDetachedRead(): undefined {
  return undefined;
}

function onWriteComplete(this: WriteRequest, status: number): void {
  const socket = (this.handle as TcpHandle)[kOwner];
  if (socket === undefined) {
    this.buffer = null;
    return;
  }
  socket.writeDone(this, status);
}

function onShutdownComplete(this: ShutdownRequest, status: number): void {
  (this.handle as TcpHandle)[kOwner]?.shutdownDone(this.handle, status);
}

function onConnectComplete(status: number, handle: TcpHandle): void {
  handle[kOwner]?.connected(handle, status);
}

function failConnect(socket: HandleSocket, status: number): void {
  if (!socket.destroyed) socket.destroy(systemError(status, 'connect'));
}

function emitError(socket: HandleSocket, error: Error): void {
  socket.emit('error', error);
}
