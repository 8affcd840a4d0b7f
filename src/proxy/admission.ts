/**
 * TETHER_MAX_CONNECTIONS at the door of a listener. A single process compares its
 * open connections with the setting. A worker of TETHER_WORKERS holds a lease: the
 * part of the instance's limit the control plane granted it (workers/lease-ledger.ts).
 * A connection past the lease is held, unread, while the worker asks for more room;
 * the answer admits it or refuses it. So the instance admits as many connections as
 * the setting says however unevenly the kernel spreads them over the workers.
 */
import type { RelaySocket } from './relay.js';

/** The most connections held while one question for room is out; later ones are refused at once. */
const MAX_WAITING = 1024;
/** The longest a held connection waits for the control plane's answer before it is refused. */
export const ADMISSION_WAIT_MS = 2_000;

/** A worker's share of a listener's limit, granted and taken back by the control plane. */
export interface ConnectionLease {
  /** Connections this worker may hold on the listener now. */
  readonly size: number;
  /**
   * Ask for room for `wanted` more connections; `answered` runs with what the control
   * plane granted (0: the instance is full). One question at a time: the admission
   * asks again only once answered.
   */
  ask(wanted: number, answered: (granted: number) => void): void;
  /** The listener that counts against it: `open` is what it holds and holds back (made anew on a reload). */
  heldBy(open: () => number): void;
}

/** What a listener gives its admission: its count and what to do with a connection. */
export interface AdmissionHost<S extends RelaySocket> {
  /** Connections open now, as the limit counts them. */
  active(): number;
  /** TETHER_MAX_CONNECTIONS as configured now. */
  maxConnections(): number;
  /** Serve it. */
  admitted(socket: S, address: string, port: number): void;
  /** Turn it away (counted as refused, with the reason 'connection limit'). */
  refused(socket: S, address: string, port: number): void;
}

interface Held<S> {
  readonly socket: S;
  readonly address: string;
  readonly port: number;
  readonly since: number;
}

export class Admission<S extends RelaySocket> {
  readonly #host: AdmissionHost<S>;
  readonly #lease: ConnectionLease | null;
  /** Connections past the lease, oldest first, waiting for the answer. */
  readonly #held: Held<S>[] = [];
  /** A question for room is out (its answer admits or refuses whatever is held then). */
  #asking = false;
  /** The listener stopped accepting: what still comes is closed unserved. */
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  readonly #answered = (granted: number): void => this.#admitHeld(granted);

  constructor(host: AdmissionHost<S>, lease: ConnectionLease | null) {
    this.#host = host;
    this.#lease = lease;
    lease?.heldBy(() => host.active() + this.#held.length);
  }

  /** Connections held while the control plane is asked for room. */
  get waiting(): number {
    return this.#held.length;
  }

  /** A connection was accepted: serve it, refuse it, or hold it until the lease answers. */
  offer(socket: S, address: string, port: number): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const host = this.#host;
    const lease = this.#lease;
    if (lease === null) {
      if (host.active() < host.maxConnections()) host.admitted(socket, address, port);
      else host.refused(socket, address, port);
      return;
    }
    // Behind held ones, a new connection waits its turn even if one just closed.
    if (this.#held.length === 0 && host.active() < this.#room(lease)) {
      host.admitted(socket, address, port);
      return;
    }
    if (this.#held.length >= MAX_WAITING) {
      host.refused(socket, address, port);
      return;
    }
    this.#held.push({ socket, address, port, since: performance.now() });
    this.#ask(lease);
    if (this.#timer === null) {
      this.#timer = setTimeout(() => this.#expire(), ADMISSION_WAIT_MS);
      this.#timer.unref();
    }
  }

  /** The listener stops accepting: every held connection, and any accepted from now, is closed unserved. */
  close(): void {
    this.#closed = true;
    this.#stopTimer();
    for (const held of this.#held.splice(0)) held.socket.destroy();
  }

  #ask(lease: ConnectionLease): void {
    if (this.#asking) return;
    this.#asking = true;
    lease.ask(this.#held.length, this.#answered);
  }

  #room(lease: ConnectionLease): number {
    return Math.min(lease.size, this.#host.maxConnections());
  }

  /**
   * The control plane answered: admit what now fits, in order. Room for fewer than
   * waited (more came while it was asked): ask again. None: the instance is full.
   */
  #admitHeld(granted: number): void {
    this.#asking = false;
    const host = this.#host;
    const lease = this.#lease!;
    while (this.#held.length > 0 && host.active() < this.#room(lease)) {
      const held = this.#held.shift()!;
      host.admitted(held.socket, held.address, held.port);
    }
    if (this.#held.length === 0) {
      this.#stopTimer();
      return;
    }
    if (granted > 0) {
      this.#ask(lease);
      return;
    }
    for (const held of this.#held.splice(0)) host.refused(held.socket, held.address, held.port);
    this.#stopTimer();
  }

  /** No answer in time (a control plane that is busy or gone): refuse what waited that long. */
  #expire(): void {
    this.#timer = null;
    const cutoff = performance.now() - ADMISSION_WAIT_MS;
    while (this.#held.length > 0 && this.#held[0]!.since <= cutoff) {
      const held = this.#held.shift()!;
      this.#host.refused(held.socket, held.address, held.port);
    }
    if (this.#held.length > 0) {
      this.#timer = setTimeout(() => this.#expire(), Math.max(1, this.#held[0]!.since + ADMISSION_WAIT_MS - performance.now()));
      this.#timer.unref();
    }
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
