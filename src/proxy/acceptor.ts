import cluster from 'node:cluster';
import net from 'node:net';
import type { Logger } from 'pino';
import type { HostPort } from '../config/types.js';
import { ListenError } from '../errors.js';
import { HandleSocket } from '../net/handle-socket.js';
import { listenSocketFor, type ListenSocket } from '../net/reuse-port.js';
import { handlesInUse, isTcpHandle, type TcpHandle } from '../net/tcp-binding.js';
import { formatAddress } from '../routing/upstream.js';
import { nextReadBuffer, relayAccepted } from './relay.js';

/** An accepted connection: served on its TCP handle, or a net.Socket where handles are not served. */
export type AcceptedSocket = HandleSocket | net.Socket;

export interface AcceptorOptions {
  readonly configured: () => HostPort;
  readonly logger: Logger;
  /** Every accepted connection's reads, into relay buffers (relay.ts); false pauses. */
  readonly onRead: (this: AcceptedSocket, nread: number, buffer: Buffer) => boolean;
  /** A connection accepted, reading nothing yet (until resumed), with its peer's address and port. */
  readonly onAccepted: (socket: AcceptedSocket, address: string, port: number) => void;
  /** The write high-water mark of accepted net.Sockets (Node's default when not given). */
  readonly highWaterMark?: number;
}

interface ServerHandle {
  onconnection?: (this: ServerHandle, status: number, handle: unknown) => void;
}

/**
 * The listening socket both listener kinds accept on, and what each accepted
 * connection is served on: its TCP handle (net/handle-socket.ts) where this Node
 * exposes handles, with no net.Socket built for it; else the net.Socket Node makes,
 * set up to read into relay buffers. Either way half-open (a client's FIN is passed
 * on, not answered by closing) and paused: nothing is read before the connection is
 * routed, so a failed connect can move to the next upstream without losing a byte.
 */
export class Acceptor {
  readonly #server: net.Server;
  readonly #configured: () => HostPort;
  readonly #onRead: AcceptorOptions['onRead'];
  readonly #onAccepted: AcceptorOptions['onAccepted'];
  /** Connections accepted so far (GET /workers: how the kernel spread them). */
  accepted = 0;
  #takesHandles = false;
  #listenSocket: ListenSocket = 'own';

  constructor(options: AcceptorOptions) {
    this.#configured = options.configured;
    this.#onRead = options.onRead;
    this.#onAccepted = options.onAccepted;
    const highWaterMark = options.highWaterMark;
    this.#server = net.createServer({
      allowHalfOpen: true,
      pauseOnConnect: true,
      noDelay: true,
      ...(highWaterMark === undefined ? {} : { highWaterMark }),
    });
    this.#server.on('connection', (socket: net.Socket) => this.#acceptSocket(socket));
    this.#server.on('error', (err) => options.logger.error({ err }, 'listener error'));
  }

  #acceptSocket(accepted: net.Socket): void {
    this.accepted++;
    const address = accepted.remoteAddress;
    if (address === undefined) {
      // Already reset by the peer.
      accepted.destroy();
      return;
    }
    const port = accepted.remotePort ?? 0;
    const socket = relayAccepted(accepted, this.#onRead);
    if (socket !== null) this.#onAccepted(socket, address, port);
  }

  #acceptHandle(handle: TcpHandle): void {
    this.accepted++;
    handle.setNoDelay(true);
    const socket = new HandleSocket(handle, this.#onRead, nextReadBuffer);
    const address = socket.remoteAddress;
    if (address === undefined) {
      socket.destroy();
      return;
    }
    this.#onAccepted(socket, address, socket.remotePort ?? 0);
  }

  /** What accepted connections are served on, once listening (logged with 'listening'). */
  get sockets(): 'tcp handles' | 'net.Socket' {
    return this.#takesHandles ? 'tcp handles' : 'net.Socket';
  }

  /** Whether this process listens on a socket of its own, one it shares with other workers, or its own of several on one port (logged with 'listening'). */
  get listenSocket(): ListenSocket {
    return this.#listenSocket;
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
    const listenSocket = listenSocketFor(cluster.isWorker, port);
    // Node 20's types lack reusePort; Node 22.12+ reads it (exclusive: not through cluster's shared handle).
    const sharing = listenSocket === 'reuseport' ? { reusePort: true, exclusive: true } : {};
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new ListenError(formatAddress(host, port), err));
      this.#server.once('error', onError);
      this.#server.listen({ host, port, backlog: 2048, ...sharing }, () => {
        this.#listenSocket = listenSocket;
        this.#server.removeListener('error', onError);
        if (handlesInUse()) this.#takeHandles();
        resolve();
      });
    });
  }

  /**
   * Take accepted handles before net.Server wraps them: its listening handle's
   * `onconnection` (the same handle in a cluster worker with SCHED_NONE) is replaced.
   * Errors, and anything that is not a TCP stream handle, go to net.Server's own.
   */
  #takeHandles(): void {
    const serverHandle = (this.#server as unknown as { _handle: ServerHandle | null })._handle;
    const original = serverHandle?.onconnection;
    if (serverHandle === null || serverHandle === undefined || typeof original !== 'function') return;
    serverHandle.onconnection = (status: number, handle: unknown): void => {
      if (status !== 0 || !isTcpHandle(handle)) {
        original.call(serverHandle, status, handle);
        return;
      }
      this.#acceptHandle(handle);
    };
    this.#takesHandles = true;
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
