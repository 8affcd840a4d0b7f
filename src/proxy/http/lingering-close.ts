import type { ClientSocket } from './types.js';

/** After our answer: close once the client has sent nothing for this long ... */
const QUIET_MS = 500;
/** ... or after this long in all. */
const MAX_MS = 5_000;

/**
 * Closing a client connection after tether's own answer (or a response that ends it)
 * the way nginx's lingering_close does, for the same reason: a client may still be
 * sending the rest of a bad request when its answer goes out; closed at once, the
 * socket would meet those bytes with a reset, and a client whose write then fails
 * (EPIPE) drops the answer unread. So after our FIN the rest is read and dropped
 * until the client closes, is quiet for QUIET_MS, or MAX_MS have passed.
 */
export class LingeringClose {
  readonly #socket: ClientSocket;
  readonly #until: number;
  #timer: NodeJS.Timeout | null;

  /**
   * Write `answer` (null: nothing more) and end the connection: at once when `now`
   * (a client too slow for its head, or one that has ended its side), else lingering.
   * Null when there is nothing to linger for.
   */
  static start(socket: ClientSocket, answer: Buffer | null, now: boolean): LingeringClose | null {
    if (!socket.writable) {
      socket.destroy();
      return null;
    }
    if (answer === null) socket.end();
    else socket.end(answer);
    if (now) {
      socket.destroySoon();
      return null;
    }
    return new LingeringClose(socket);
  }

  private constructor(socket: ClientSocket) {
    this.#socket = socket;
    this.#until = performance.now() + MAX_MS;
    this.#timer = setTimeout(destroySocket, QUIET_MS, socket);
    socket.resume();
  }

  /** The client sent more: dropped; the quiet period starts again, within the limit. */
  read(): void {
    if (this.#timer === null) return;
    if (performance.now() >= this.#until) this.#socket.destroy();
    else this.#timer.refresh();
  }

  /** The connection closed. */
  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

function destroySocket(socket: ClientSocket): void {
  socket.destroy();
}
