import { getSystemErrorName } from 'node:util';

/**
 * Node's TCP handle bindings as tether uses them (net/handle-socket.ts serves
 * connections on them): the handle and request shapes, the bindings themselves from
 * `process.binding('tcp_wrap')` and `process.binding('stream_wrap')` (DEP0111, a
 * documentation-only deprecation on Node 20 and 22), whether they are there, and the
 * switch tests use to take the net.Socket path instead.
 */

/** The libuv TCP stream handle, as Node's tcp_wrap binding exposes it. */
export interface TcpHandle {
  onread: ((this: TcpHandle) => Buffer | undefined) | null;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteRequest, data: Uint8Array): number;
  writev(req: WriteRequest, chunks: Uint8Array[], allBuffers: true): number;
  shutdown(req: ShutdownRequest): number;
  close(callback?: () => void): void;
  useUserBuffer(buffer: Uint8Array): void;
  setNoDelay(enable: boolean): number;
  getpeername(out: AddressOut): number;
  getsockname(out: AddressOut): number;
  connect(req: ConnectRequest, address: string, port: number): number;
  connect6(req: ConnectRequest, address: string, port: number): number;
  reset?(callback: () => void): number;
  readonly writeQueueSize: number;
}

export interface AddressOut {
  address?: string;
  port?: number;
  family?: string;
}

export interface WriteRequest {
  handle: TcpHandle;
  oncomplete: (this: WriteRequest, status: number) => void;
  /** What an async write reads from, kept alive until it completes. */
  buffer: Uint8Array | Uint8Array[] | null;
}

export interface ShutdownRequest {
  handle: TcpHandle;
  oncomplete: (this: ShutdownRequest, status: number) => void;
}

export interface ConnectRequest {
  oncomplete: (status: number, handle: TcpHandle) => void;
  address: string;
  port: number;
}

interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectRequest;
  constants: { SOCKET: number };
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  ShutdownWrap: new () => ShutdownRequest;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

export const UV_EOF = -4095;
export const UV_ENOTCONN = -107;

/** `process.binding(name)`, or null where this Node refuses it. */
function processBinding<T>(name: string): Partial<T> | null {
  try {
    return (process as unknown as { binding(name: string): unknown }).binding(name) as Partial<T>;
  } catch {
    return null;
  }
}

function loadStreamWrap(): StreamWrapBinding | null {
  const binding = processBinding<StreamWrapBinding>('stream_wrap');
  if (binding === null) return null;
  if (typeof binding.WriteWrap !== 'function' || typeof binding.ShutdownWrap !== 'function' || !(binding.streamBaseState instanceof Int32Array)) return null;
  if (typeof binding.kReadBytesOrError !== 'number' || typeof binding.kLastWriteWasAsync !== 'number') return null;
  return binding as StreamWrapBinding;
}

function loadTcpWrap(): TcpWrapBinding | null {
  const binding = processBinding<TcpWrapBinding>('tcp_wrap');
  if (binding === null) return null;
  if (typeof binding.TCP !== 'function' || typeof binding.TCPConnectWrap !== 'function' || typeof binding.constants?.SOCKET !== 'number') return null;
  return binding as TcpWrapBinding;
}

/** Node's stream_wrap binding (write and shutdown requests, the stream state), or null. */
export const streamWrap = loadStreamWrap();
/** Node's tcp_wrap binding (TCP handles, connect requests), or null. */
export const tcpWrap = streamWrap === null ? null : loadTcpWrap();

/** Whether connections can be served on their handles on this Node. */
export const handleSocketsAvailable = streamWrap !== null;

/** Whether outgoing connections can be made as handles (`HandleSocket.connect`). */
export const handleConnectsAvailable = tcpWrap !== null;

let inUse = handleSocketsAvailable;

/** Whether connections are served on handles now (where available): listeners read it when they start, connects on each. */
export function handlesInUse(): boolean {
  return inUse;
}

/** For tests: serve connections on net.Socket even where handles are available (false), or on handles again (true). */
export function useHandles(enabled: boolean): void {
  inUse = enabled && handleSocketsAvailable;
}

/** Whether `value` looks like a TCP stream handle this module can serve. */
export function isTcpHandle(value: unknown): value is TcpHandle {
  const h = value as Partial<TcpHandle> | null;
  return (
    h !== null &&
    typeof h === 'object' &&
    typeof h.readStart === 'function' &&
    typeof h.writeBuffer === 'function' &&
    typeof h.writev === 'function' &&
    typeof h.shutdown === 'function' &&
    typeof h.useUserBuffer === 'function' &&
    typeof h.getpeername === 'function'
  );
}

/** An error as Node makes one for a failed system call (`code`, `errno`, `syscall`). */
export function systemError(status: number, syscall: string): Error {
  const code = getSystemErrorName(status);
  const err = new Error(`${syscall} ${code}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = status;
  err.syscall = syscall;
  return err;
}
