/**
 * A worker's leases: per listener, the part of TETHER_MAX_CONNECTIONS the control
 * plane granted it (lease-ledger.ts keeps the books). A listener admits connections
 * up to its lease and asks for more past it (proxy/admission.ts); when another worker
 * runs out, the control plane takes back what this one holds unused.
 */
import type { ConnectionLease } from '../proxy/admission.js';
import type { ToControlPlane } from './messages.js';

export class WorkerLease implements ConnectionLease {
  readonly #listener: string;
  readonly #send: (message: ToControlPlane) => void;
  #size = 0;
  /** The ledger's books this lease is from (-1: none yet). */
  #books = -1;
  /** Open connections of the listener that holds this lease (none until one does). */
  #open: () => number = () => 0;
  /** Who asked the question out, or null when none is. */
  #asked: ((granted: number) => void) | null = null;

  constructor(listener: string, send: (message: ToControlPlane) => void) {
    this.#listener = listener;
    this.#send = send;
  }

  get size(): number {
    return this.#size;
  }

  /** The listener that counts against this lease (made at start-up, or anew on a reload). */
  heldBy(open: () => number): void {
    this.#open = open;
  }

  ask(wanted: number, answered: (granted: number) => void): void {
    this.#asked = answered;
    this.#send({ type: 'lease-ask', listener: this.#listener, books: this.#books, wanted });
  }

  /**
   * The control plane granted `count` more from `books` (0 with an answer: the
   * instance is full). Newer books void the lease held; a grant from older ones is void.
   */
  granted(books: number, count: number, answer: boolean): void {
    if (books > this.#books) {
      this.#books = books;
      this.#size = 0;
    }
    const valid = books === this.#books ? count : 0;
    this.#size += valid;
    if (!answer) return;
    const asked = this.#asked;
    this.#asked = null;
    asked?.(valid);
  }

  /** Another worker needs room: give back what is granted and not in use. */
  reclaim(books: number): void {
    if (books !== this.#books) return;
    const spare = Math.max(0, this.#size - this.#open());
    this.#size -= spare;
    this.#send({ type: 'lease-return', listener: this.#listener, books, count: spare });
  }
}

/** A worker's leases by listener name, made on first mention (a grant may come before its listener). */
export class WorkerLeases {
  readonly #send: (message: ToControlPlane) => void;
  readonly #byListener = new Map<string, WorkerLease>();

  constructor(send: (message: ToControlPlane) => void) {
    this.#send = send;
  }

  get(listener: string): WorkerLease {
    let lease = this.#byListener.get(listener);
    if (lease === undefined) {
      lease = new WorkerLease(listener, this.#send);
      this.#byListener.set(listener, lease);
    }
    return lease;
  }
}
