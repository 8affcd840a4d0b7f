import { afterEach, describe, expect, it } from 'vitest';
import { Admission } from '../../../src/proxy/admission.js';
import type { RelaySocket } from '../../../src/proxy/relay.js';
import { WorkerLease } from '../../../src/workers/connection-lease.js';
import { LeaseLedger, RECLAIM_WAIT_MS } from '../../../src/workers/lease-ledger.js';
import type { ToControlPlane, ToWorker } from '../../../src/workers/messages.js';

/**
 * TETHER_MAX_CONNECTIONS over workers: the control plane's ledger, each worker's
 * lease and the listener's admission, wired through in-order channels as the IPC
 * between processes is, with delivery interleaved as the test chooses. The
 * end-to-end test through real workers is in integration/workers.test.ts.
 */

const LISTENER = 'main';
/** Stands for an accepted connection: admission only ever destroys one it drops at a close. */
const SOCKET = { destroy: () => undefined } as unknown as RelaySocket;

interface SimWorker {
  readonly id: number;
  readonly lease: WorkerLease;
  readonly admission: Admission<RelaySocket>;
  open: number;
  refused: number;
  alive: boolean;
  /** Control plane -> worker, in order. */
  readonly inbox: ToWorker[];
  /** Worker -> control plane, in order. */
  readonly outbox: ToControlPlane[];
}

class Instance {
  readonly ledger: LeaseLedger<SimWorker>;
  readonly workers: SimWorker[] = [];
  max: number;
  #nextId = 1;

  constructor(slots: number, max: number) {
    this.max = max;
    this.ledger = new LeaseLedger<SimWorker>(slots, (to, message) => to.inbox.push(message));
    this.ledger.configure(new Map([[LISTENER, max]]));
    for (let i = 0; i < slots; i++) this.start();
  }

  start(): SimWorker {
    const outbox: ToControlPlane[] = [];
    const lease = new WorkerLease(LISTENER, (m) => outbox.push(m));
    const worker: SimWorker = {
      id: this.#nextId++,
      lease,
      admission: null as unknown as Admission<RelaySocket>,
      open: 0,
      refused: 0,
      alive: true,
      inbox: [],
      outbox,
    };
    (worker as { admission: Admission<RelaySocket> }).admission = new Admission<RelaySocket>(
      {
        active: () => worker.open,
        maxConnections: () => this.max,
        admitted: () => worker.open++,
        refused: () => worker.refused++,
      },
      lease,
    );
    this.workers.push(worker);
    this.ledger.started(worker);
    return worker;
  }

  live(): SimWorker[] {
    return this.workers.filter((w) => w.alive);
  }

  kill(worker: SimWorker): void {
    worker.alive = false;
    worker.admission.close();
    worker.open = 0;
    this.ledger.gone(worker);
  }

  /** One message along one channel; false if that channel is empty. */
  deliver(worker: SimWorker, toWorker: boolean): boolean {
    if (!worker.alive) return false;
    if (toWorker) {
      const message = worker.inbox.shift();
      if (message === undefined) return false;
      if (message.type === 'lease') worker.lease.granted(message.books, message.grant, message.answer);
      else if (message.type === 'lease-reclaim') worker.lease.reclaim(message.books);
      return true;
    }
    const message = worker.outbox.shift();
    if (message === undefined) return false;
    if (message.type === 'lease-ask') this.ledger.ask(worker, message.listener, message.books, message.wanted);
    else if (message.type === 'lease-return') this.ledger.returned(worker, message.listener, message.books, message.count);
    return true;
  }

  /** Every message, until none is left. */
  settle(): void {
    for (let moved = true; moved; ) {
      moved = false;
      for (const w of this.live()) moved = this.deliver(w, true) || this.deliver(w, false) || moved;
    }
  }

  get open(): number {
    return this.live().reduce((n, w) => n + w.open, 0);
  }

  /** The books agree with every worker, and lend exactly the limit. */
  expectBalanced(): void {
    const books = this.ledger.leases(LISTENER)!;
    let lent = 0;
    for (const w of this.live()) {
      expect(books.byWorker.get(w) ?? 0).toBe(w.lease.size);
      lent += w.lease.size;
    }
    expect(lent + books.free).toBe(this.max);
  }

  close(): void {
    for (const w of this.workers) w.admission.close();
    this.ledger.close();
  }
}

/** `count` connections accepted by `worker` (where from does not matter to admission). */
function connect(worker: SimWorker, count = 1): void {
  for (let i = 0; i < count; i++) worker.admission.offer(SOCKET, '127.0.0.2', 1000 + i);
}

/** Mulberry32: the same cases on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let instance: Instance | null = null;
afterEach(() => {
  instance?.close();
  instance = null;
});

describe('LeaseLedger', () => {
  it('lends every worker an even share, the remainder to the first, and nothing more', () => {
    instance = new Instance(3, 10);
    instance.settle();
    expect(instance.workers.map((w) => w.lease.size)).toEqual([4, 3, 3]);
    expect(instance.ledger.leases(LISTENER)!.free).toBe(0);
    instance.expectBalanced();
  });

  it('admits the whole limit when every connection lands on one worker, and refuses the next', () => {
    const sim = (instance = new Instance(3, 30));
    sim.settle();
    const [a] = sim.workers;
    for (let i = 0; i < 30; i++) {
      connect(a!);
      sim.settle();
    }
    expect(a!.open).toBe(30);
    expect(a!.refused).toBe(0);
    connect(a!);
    sim.settle();
    expect(a!.open).toBe(30);
    expect(a!.refused).toBe(1);
    sim.expectBalanced();
  });

  it('holds a burst past the lease and admits it in one answer, in order', () => {
    const sim = (instance = new Instance(2, 20));
    sim.settle();
    const [a] = sim.workers;
    connect(a!, 16);
    expect(a!.open).toBe(10);
    expect(a!.admission.waiting).toBe(6);
    expect(a!.outbox.filter((m) => m.type === 'lease-ask')).toHaveLength(1);
    sim.settle();
    expect(a!.open).toBe(16);
    expect(a!.admission.waiting).toBe(0);
    sim.expectBalanced();
  });

  it('never takes back room in use: a full worker gives back nothing, and the asker is refused', () => {
    const sim = (instance = new Instance(2, 4));
    sim.settle();
    const [a, b] = sim.workers;
    connect(b!, 2);
    connect(a!, 3);
    sim.settle();
    expect([a!.open, b!.open]).toEqual([2, 2]);
    expect(a!.refused).toBe(1);
    sim.expectBalanced();
  });

  it('does not give away room that connections it holds wait for', () => {
    const sim = (instance = new Instance(2, 10));
    sim.settle();
    const [a, b] = sim.workers;
    connect(a!, 5);
    connect(b!, 5);
    sim.settle();
    // a fills up and holds two; then two of its connections end, as b asks too.
    connect(a!, 2);
    a!.open -= 2;
    connect(b!);
    sim.deliver(b!, false); // b's question first: the ledger asks a to give back
    sim.deliver(a!, true); // a gives back nothing: its room is for the two it holds
    sim.settle();
    expect(a!.open).toBe(5);
    expect(a!.refused).toBe(0);
    expect(b!.refused).toBe(1);
    sim.expectBalanced();
  });

  it('grants what the waiting workers hold before anyone gets room beyond it: no refusal while another holds spare lease', () => {
    const sim = (instance = new Instance(3, 30));
    sim.settle();
    const [a, b, c] = sim.workers;
    // A burst on a alone: it holds the whole limit. Then ten of its connections end.
    for (let i = 0; i < 30; i++) {
      connect(a!);
      sim.settle();
    }
    a!.open -= 10;
    // Room for exactly ten: b takes 1 and asks, a takes 7 in its own lease, c takes 2
    // and asks while the round b started runs; a gives back the 3 it has left.
    connect(b!, 1);
    sim.deliver(b!, false);
    connect(a!, 7);
    connect(c!, 2);
    sim.deliver(c!, false);
    sim.settle();
    expect([a!.open, b!.open, c!.open]).toEqual([27, 1, 2]);
    expect([a!.refused, b!.refused, c!.refused]).toEqual([0, 0, 0]);
    sim.expectBalanced();
  });

  it("frees a dead worker's lease at once: its replacement, or a worker that asks, gets it", () => {
    const sim = (instance = new Instance(2, 10));
    sim.settle();
    const [a, b] = sim.workers;
    connect(b!, 5);
    sim.settle();
    sim.kill(b!);
    expect(sim.ledger.leases(LISTENER)!.free).toBe(5);
    connect(a!, 8);
    sim.settle();
    expect(a!.open).toBe(8);
    const c = sim.start();
    sim.settle();
    // The replacement's share, out of what a left free.
    expect(a!.lease.size).toBeGreaterThanOrEqual(8);
    expect(c.lease.size).toBe(Math.min(5, 10 - a!.lease.size));
    sim.expectBalanced();
  });

  it('answers with what it has once a worker does not give back within RECLAIM_WAIT_MS', async () => {
    const sim = (instance = new Instance(2, 4));
    sim.settle();
    const [a, b] = sim.workers;
    connect(a!, 3);
    sim.deliver(a!, false); // the question reaches the ledger, which asks b; b never reads it
    expect(b!.inbox.map((m) => m.type)).toEqual(['lease-reclaim']);
    await new Promise((resolve) => setTimeout(resolve, RECLAIM_WAIT_MS + 50));
    sim.deliver(a!, true);
    expect(a!.open).toBe(2);
    expect(a!.refused).toBe(1);
  });

  it('a reload that lowers the limit takes back unused room and lends nothing until the instance is under it', () => {
    const sim = (instance = new Instance(2, 10));
    sim.settle();
    const [a, b] = sim.workers;
    connect(a!, 4);
    sim.settle();
    sim.max = 3;
    sim.ledger.configure(new Map([[LISTENER, 3]]));
    sim.settle();
    // b gave back its 5; a keeps its 4 open (nobody is cut off) but may not add one.
    expect(b!.lease.size).toBe(0);
    expect(a!.lease.size).toBe(4);
    expect(sim.ledger.leases(LISTENER)!.free).toBe(-1);
    connect(b!);
    sim.settle();
    expect(b!.refused).toBe(1);
    a!.open -= 2; // two close
    connect(b!);
    sim.settle();
    expect(b!.open).toBe(1);
    expect(sim.open).toBe(3);
  });

  it('a listener removed and made again by reloads starts from new books: the old leases are void, late answers too', () => {
    const sim = (instance = new Instance(2, 10));
    sim.settle();
    const [a, b] = sim.workers;
    connect(a!, 7);
    sim.deliver(a!, false); // a's question reaches the ledger, which asks b to give back
    sim.ledger.configure(new Map());
    sim.ledger.configure(new Map([[LISTENER, 10]]));
    sim.settle();
    // a's held pair was refused (its question fell with the old books); both workers hold new shares only.
    expect([a!.lease.size, b!.lease.size]).toEqual([5, 5]);
    expect(a!.refused).toBe(2);
    sim.expectBalanced();
  });

  it('random walk: 20,000 steps over 3 workers (connects, closes, deaths, starts, any delivery order): never over the limit, and it settles balanced', () => {
    const rng = prng(0x1ea5e);
    const sim = (instance = new Instance(3, 40));
    let peak = 0;
    for (let step = 0; step < 20_000; step++) {
      const live = sim.live();
      const w = live[Math.floor(rng() * live.length)]!;
      const r = rng();
      if (r < 0.3) connect(w);
      else if (r < 0.5) w.open = Math.max(0, w.open - 1);
      else if (r < 0.995) sim.deliver(w, rng() < 0.5);
      else if (live.length > 1) {
        sim.kill(w);
        sim.start();
      }
      expect(sim.open).toBeLessThanOrEqual(sim.max);
      peak = Math.max(peak, sim.open);
    }
    sim.settle();
    sim.expectBalanced();
    for (const w of sim.live()) expect(w.admission.waiting).toBe(0);
    expect(peak).toBe(sim.max);
    // However the connections landed, the instance admits up to the limit and no more.
    for (const w of sim.live()) {
      w.open = 0;
      w.refused = 0;
    }
    const live = sim.live();
    for (let i = 0; i < sim.max + 5; i++) {
      connect(live[Math.floor(rng() * live.length)]!);
      sim.settle();
    }
    expect(sim.open).toBe(sim.max);
    expect(live.reduce((n, w) => n + w.refused, 0)).toBe(5);
    sim.expectBalanced();
  });
});
