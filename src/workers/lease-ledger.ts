/**
 * TETHER_MAX_CONNECTIONS for the whole instance with TETHER_WORKERS: the control
 * plane's books of each listener's limit, lent out to the workers.
 *
 * Each worker starts with an even share. One that fills its lease holds the next
 * connections and asks (`lease-ask`); the ledger grants from what is free, and when
 * nothing is, takes back what the other workers hold unused (`lease-reclaim`, each
 * answering `lease-return` with what it gives up), then grants or says no. Workers
 * only ever give back leases they do not use, so the leases add up to the limit and
 * the connections open to at most that. A dead worker's lease is free again at once.
 * The kernel may hand one worker most of a burst: the instance still admits the
 * setting's number, at the cost of a question per lease exhausted.
 */
import type { ToWorker } from './messages.js';

/** How long the ledger waits for workers to give back spare room before it answers with what it has. */
export const RECLAIM_WAIT_MS = 500;

interface ListenerBooks<Borrower> {
  /** Numbers these books: a listener removed and made again gets new ones, and the old leases are void. */
  readonly id: number;
  max: number;
  /** The limit less every lease: negative after a reload lowered it, until workers give back. */
  free: number;
  readonly leases: Map<Borrower, number>;
  /** Workers whose question is not answered yet, and how many connections each holds. */
  readonly waiting: Map<Borrower, number>;
  /** Workers asked to give back room and not yet answered; null when no round is under way. */
  round: Set<Borrower> | null;
  timer: NodeJS.Timeout | null;
}

/** `Borrower`: what a worker is known by (WorkerHandle). */
export class LeaseLedger<Borrower extends object> {
  readonly #send: (to: Borrower, message: ToWorker) => void;
  /** Workers taken into account, in order of their start: each gets a share of every listener. */
  readonly #borrowers = new Set<Borrower>();
  readonly #books = new Map<string, ListenerBooks<Borrower>>();
  readonly #workers: number;
  #nextBooks = 1;

  constructor(workers: number, send: (to: Borrower, message: ToWorker) => void) {
    this.#workers = workers;
    this.#send = send;
  }

  /** Start-up and reloads: each listener's TETHER_MAX_CONNECTIONS. New listeners are lent out to every worker at once. */
  configure(limits: ReadonlyMap<string, number>): void {
    for (const [listener, books] of this.#books) {
      if (limits.has(listener)) continue;
      if (books.timer !== null) clearTimeout(books.timer);
      this.#books.delete(listener);
      for (const borrower of books.waiting.keys()) this.#send(borrower, { type: 'lease', listener, books: books.id, grant: 0, answer: true });
    }
    for (const [listener, max] of limits) {
      const books = this.#books.get(listener);
      if (books === undefined) {
        const fresh: ListenerBooks<Borrower> = { id: this.#nextBooks++, max, free: max, leases: new Map(), waiting: new Map(), round: null, timer: null };
        this.#books.set(listener, fresh);
        for (const borrower of this.#borrowers) this.#lendShare(listener, fresh, borrower);
        continue;
      }
      if (books.max === max) continue;
      books.free += max - books.max;
      books.max = max;
      if (books.free < 0 && books.round === null) this.#reclaim(listener, books, null);
      else this.#serve(listener, books);
    }
  }

  /** A worker takes a slot (before it is told to start): its share of every listener, out of what is free. */
  started(borrower: Borrower): void {
    if (this.#borrowers.has(borrower)) return;
    this.#borrowers.add(borrower);
    for (const [listener, books] of this.#books) this.#lendShare(listener, books, borrower);
  }

  /** A worker is gone: its leases are free again, for whoever waits. */
  gone(borrower: Borrower): void {
    if (!this.#borrowers.delete(borrower)) return;
    for (const [listener, books] of this.#books) {
      books.free += books.leases.get(borrower) ?? 0;
      books.leases.delete(borrower);
      books.waiting.delete(borrower);
      this.#settled(listener, books, borrower);
    }
  }

  /** A worker filled its lease from `booksId` and holds `wanted` connections. */
  ask(borrower: Borrower, listener: string, booksId: number, wanted: number): void {
    const books = this.#books.get(listener);
    if (books === undefined || books.id !== booksId || !this.#borrowers.has(borrower)) {
      this.#send(borrower, { type: 'lease', listener, books: booksId, grant: 0, answer: true });
      return;
    }
    books.waiting.set(borrower, Math.max(1, wanted));
    this.#serve(listener, books);
    if (books.waiting.size > 0 && books.round === null) this.#reclaim(listener, books, borrower);
  }

  /** A worker gave back `count` of its lease from `booksId` (answering a reclaim). */
  returned(borrower: Borrower, listener: string, booksId: number, count: number): void {
    const books = this.#books.get(listener);
    if (books === undefined || books.id !== booksId || !this.#borrowers.has(borrower)) return;
    const held = books.leases.get(borrower) ?? 0;
    const back = Math.min(held, Math.max(0, count));
    books.leases.set(borrower, held - back);
    books.free += back;
    this.#settled(listener, books, borrower);
  }

  /** The lease each worker holds on `listener`, and what is free (tests). */
  leases(listener: string): { readonly free: number; readonly byWorker: ReadonlyMap<Borrower, number> } | null {
    const books = this.#books.get(listener);
    return books === undefined ? null : { free: books.free, byWorker: books.leases };
  }

  close(): void {
    for (const books of this.#books.values()) if (books.timer !== null) clearTimeout(books.timer);
  }

  /** `borrower` has nothing more to give back: the round ends if it was the last asked; else grant what is free now. */
  #settled(listener: string, books: ListenerBooks<Borrower>, borrower: Borrower): void {
    if (books.round?.delete(borrower) === true && books.round.size === 0) this.#endRound(listener, books);
    else this.#serve(listener, books);
  }

  /** An even share of the limit (the remainder to the first workers), or what is left of it. */
  #lendShare(listener: string, books: ListenerBooks<Borrower>, borrower: Borrower): void {
    const index = books.leases.size;
    const share = Math.floor(books.max / this.#workers) + (index < books.max % this.#workers ? 1 : 0);
    const grant = Math.max(0, Math.min(share, books.free));
    books.leases.set(borrower, grant);
    books.free -= grant;
    this.#send(borrower, { type: 'lease', listener, books: books.id, grant, answer: false });
  }

  /**
   * Grant what is free to the workers waiting, oldest question first, each what it
   * holds; a chunk beyond that only from room no other waiting worker holds
   * connections for (else a worker granted spare room leaves another to be refused).
   */
  #serve(listener: string, books: ListenerBooks<Borrower>): void {
    let othersWant = 0;
    for (const wanted of books.waiting.values()) othersWant += wanted;
    for (const [borrower, wanted] of books.waiting) {
      if (books.free <= 0) return;
      othersWant -= wanted;
      const beyond = Math.max(0, Math.min(this.#chunk(books) - wanted, books.free - wanted - othersWant));
      const grant = Math.min(books.free, wanted + beyond);
      books.free -= grant;
      books.leases.set(borrower, (books.leases.get(borrower) ?? 0) + grant);
      books.waiting.delete(borrower);
      this.#send(borrower, { type: 'lease', listener, books: books.id, grant, answer: true });
    }
  }

  /** A grant large enough that a busy worker does not ask per connection, small enough to leave room for others. */
  #chunk(books: ListenerBooks<Borrower>): number {
    return Math.max(1, Math.ceil(books.max / (4 * this.#workers)));
  }

  /** Ask every worker but `asking` for what it holds unused; the round ends when all answered or after RECLAIM_WAIT_MS. */
  #reclaim(listener: string, books: ListenerBooks<Borrower>, asking: Borrower | null): void {
    const asked = new Set<Borrower>();
    for (const [borrower, lease] of books.leases) if (borrower !== asking && lease > 0) asked.add(borrower);
    if (asked.size === 0) {
      this.#endRound(listener, books);
      return;
    }
    books.round = asked;
    books.timer = setTimeout(() => this.#endRound(listener, books), RECLAIM_WAIT_MS);
    books.timer.unref();
    for (const borrower of asked) this.#send(borrower, { type: 'lease-reclaim', listener, books: books.id });
  }

  /** Grant what came back; whoever still waits is told there is no room. */
  #endRound(listener: string, books: ListenerBooks<Borrower>): void {
    if (books.timer !== null) clearTimeout(books.timer);
    books.timer = null;
    books.round = null;
    this.#serve(listener, books);
    for (const borrower of books.waiting.keys()) this.#send(borrower, { type: 'lease', listener, books: books.id, grant: 0, answer: true });
    books.waiting.clear();
  }
}
