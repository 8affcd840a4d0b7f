import net from 'node:net';
import type { Logger } from 'pino';
import type { HostPort } from '../config/types.js';
import { ListenError } from '../errors.js';
import { handlesInUse, isTcpHandle, type TcpHandle } from '../net/handle-socket.js';
import { formatAddress } from '../routing/upstream.js';

/** Called with each accepted TCP handle, in place of a net.Socket (net/handle-socket.ts). */
export type HandleAccepted = (handle: TcpHandle) => void;

interface ServerHandle {
  onconnection?: (this: ServerHandle, status: number, handle: unknown) => void;
}

/**
 * The listening socket both listener kinds accept on. allowHalfOpen: a client's FIN is
 * passed on, not answered by closing (Node 20's accepted sockets default to false).
 * pauseOnConnect: nothing is read before the connection is routed, so a failed
 * connect can move to the next upstream without losing a byte.
 */
export class Acceptor {
  readonly #server: net.Server;
  readonly #configured: () => HostPort;
  /** Connections accepted so far (GET /workers: how the kernel spread them). */
  accepted = 0;

  readonly #onHandle: HandleAccepted | null;

  /**
   * `highWaterMark`: the accepted sockets' (Node's default when not given).
   * `onHandle`: where given (and this Node exposes them), accepted connections come
   * to it as TCP handles, without the net.Socket Node would build for each, and
   * `onConnection` only sees those the handle path cannot take.
   */
  constructor(onConnection: (socket: net.Socket) => void, configured: () => HostPort, logger: Logger, highWaterMark?: number, onHandle?: HandleAccepted) {
    this.#configured = configured;
    this.#onHandle = onHandle ?? null;
    this.#server = net.createServer({
      allowHalfOpen: true,
      pauseOnConnect: true,
      noDelay: true,
      ...(highWaterMark === undefined ? {} : { highWaterMark }),
    });
    this.#server.on('connection', (socket: net.Socket) => {
      this.accepted++;
      onConnection(socket);
    });
    this.#server.on('error', (err) => logger.error({ err }, 'listener error'));
  }

  /** The bound address (the real port when configured with port 0). */
  get address(): string {
    const a = this.#server.address();
    if (a && typeof a === 'object') return formatAddress(a.address, a.port);
    const { host, port } = this.#configured();
    return formatAddress(host, port);
  }

  get port(): number {
    const a = this.#server.address();
    return a && typeof a === 'object' ? a.port : this.#configured().port;
  }

  listen(): Promise<void> {
    const { host, port } = this.#configured();
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new ListenError(formatAddress(host, port), err));
      this.#server.once('error', onError);
      this.#server.listen({ host, port, backlog: 2048 }, () => {
        this.#server.removeListener('error', onError);
        if (this.#onHandle !== null && handlesInUse()) this.#takeHandles(this.#onHandle);
        resolve();
      });
    });
  }

  /**
   * Take accepted handles before net.Server wraps them: its listening handle's
   * `onconnection` (the same handle in a cluster worker with SCHED_NONE) is replaced.
   * Errors, and anything that is not a TCP stream handle, go to net.Server's own.
   */
  #takeHandles(onHandle: HandleAccepted): void {
    const serverHandle = (this.#server as unknown as { _handle: ServerHandle | null })._handle;
    const original = serverHandle?.onconnection;
    if (serverHandle === null || serverHandle === undefined || typeof original !== 'function') return;
    serverHandle.onconnection = (status: number, handle: unknown): void => {
      if (status !== 0 || !isTcpHandle(handle)) {
        original.call(serverHandle, status, handle);
        return;
      }
      this.accepted++;
      handle.setNoDelay(true);
      onHandle(handle);
    };
  }

  /**
   * Stop accepting; open connections go on. Resolves once the listening socket is
   * closed (server.close's own callback would wait for every connection to end).
   */
  stop(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    this.#server.close();
    return new Promise((resolve) => setImmediate(resolve));
  }
}
