/**
 * The hash side of a pool: the routable view (routable-view.ts: the routable
 * upstreams, the per-slot loads and weights the pickers read), the lookup table in
 * use with its map onto that view, and the rendezvous fallback. It answers where a
 * key goes (hash order, bounded loads, p2c); UpstreamPool (pool.ts) decides what is
 * routable and when a new table is built.
 *
 * The view is always current, and changed one upstream at a time; the table's member
 * indices are mapped onto it through the Upstream objects the table was built over
 * (an upstream removed and added again is a new object: reached again once the next
 * table, already on its way, arrives).
 */
import { hashKey32 } from '../hashing/hash.js';
import { RendezvousTable, buildRendezvous } from '../hashing/rendezvous.js';
import { tableBuffers, tableFromData } from '../hashing/tables.js';
import type { LookupTable, TableData } from '../hashing/types.js';
import { pickBounded, underCap } from './bounded.js';
import { pickTwoChoices } from './p2c.js';
import { RoutableView } from './routable-view.js';
import type { RouteDecision } from './types.js';
import type { Upstream } from './upstream.js';

/** How much of the hash order bounded loads looks at before walking all of it. */
const BOUNDED_PREFIX = 8;

export class RouteTable {
  /**
   * The routable upstreams (Upstream.slot indexes it) with the loads and weights the
   * pickers read, changed one upstream at a time; also the member order of builds.
   */
  readonly view = new RoutableView<Upstream>();
  // Private alias: the code below reads as it did inside the pool.
  readonly #view = this.view;

  /** The table in use, possibly built for an older membership; null before the first. */
  #table: LookupTable | null = null;
  /** The upstreams the table in use was built over, by table index. */
  #tableUpstreams: readonly Upstream[] = [];
  /** The data behind #table, and whether #table was handed out (the `table` getter). */
  #tableData: TableData | null = null;
  #exposed = false;
  /**
   * Table member index -> routable slot now, or -1 when that member is not routable
   * now. Written whole when a table is installed, then one entry per slot change.
   */
  #tableSlot = new Int32Array(0);
  /** How many of the table's members are routable now. */
  #tableLive = 0;
  /** Rendezvous over the routable view, made on first need after each change. */
  #fallback: LookupTable | null = null;

  /** Scratch for table orders (table indices) and the routable slots they map to. */
  #raw = new Uint32Array(BOUNDED_PREFIX);
  #order = new Uint32Array(BOUNDED_PREFIX);

  /**
   * The table routing uses now: the newest built, or, before the first, rendezvous
   * over the routable upstreams. Its `members` are names; indices are its own.
   */
  get table(): LookupTable {
    if (this.#table === null) return this.#fallbackTable();
    // Handed out: its arrays must stay valid, so they are never recycled.
    this.#exposed = true;
    return this.#table;
  }

  /**
   * Puts a new table in use, built over `upstreams`. Returns the buffers of the table
   * it replaces when `recycle` and nobody outside can hold that table (handed to the
   * next build to write again, hashing/ring/arena.ts); else none.
   */
  install(data: TableData, upstreams: readonly Upstream[], recycle: boolean): ArrayBuffer[] {
    // One reference swap: a route() running now (it cannot, we are on its thread)
    // or any caller holding the old table finishes on the old one.
    const retired = this.#tableData;
    const spare = retired !== null && !this.#exposed && recycle ? tableBuffers(retired) : [];
    this.#table = tableFromData(data);
    this.#tableData = data;
    this.#exposed = false;
    this.#tableUpstreams = upstreams;
    this.#mapTable();
    return spare;
  }

  /** Where a key goes now by hash (no pins), or p2c when key is null. */
  route(key: string | null, maxCandidates: number, balanceFactor: number): RouteDecision {
    if (this.#view.size === 0) return { via: key === null ? 'p2c' : 'hash', candidates: [] };
    if (key === null) return { via: 'p2c', candidates: this.#twoChoices(maxCandidates) };
    return { via: 'hash', candidates: this.#hashOrder(hashKey32(key), maxCandidates, balanceFactor) };
  }

  /**
   * The upstream `key` hashes to now, ignoring pins and load bounds (the question
   * /rebalance asks of every open connection); null when nothing is routable.
   * Allocation-free for keys under WASM_HASH_MIN_LENGTH.
   */
  primary(key: string): Upstream | null {
    if (this.#view.size === 0) return null;
    const hash = hashKey32(key);
    const table = this.#table;
    if (table !== null && this.#tableLive > 0) {
      const slot = this.#tableSlot[table.primary(hash)]!;
      if (slot >= 0) return this.#view.members[slot]!;
    }
    return this.#collect(hash, 1) > 0 ? this.#view.members[this.#order[0]!]! : null;
  }

  #hashOrder(hash: number, maxCandidates: number, factor: number): Upstream[] {
    const view = this.#view;
    const routable = view.members;
    const size = routable.length;
    // A short prefix of the hash order serves retries and, nearly always, bounded
    // loads; the whole order (O(N) for some tables) only when none of it has room.
    let count = this.#collect(hash, factor > 1 ? Math.max(maxCandidates, BOUNDED_PREFIX) : maxCandidates);
    const order = this.#order;
    let chosen = order[0]!;
    if (factor > 1) {
      chosen = pickBounded(order, count, view.loads, view.weights, view.active, view.weight, factor);
      if (count < size && !underCap(view.loads[chosen]!, view.weights[chosen]!, view.active, view.weight, factor)) {
        count = this.#collect(hash, size);
        chosen = pickBounded(this.#order, count, view.loads, view.weights, view.active, view.weight, factor);
      }
    }
    const slots = this.#order;
    const out: Upstream[] = [routable[chosen]!];
    for (let i = 0; i < count && out.length < maxCandidates; i++) {
      if (slots[i] !== chosen) out.push(routable[slots[i]!]!);
    }
    return out;
  }

  /**
   * Writes up to `want` routable slots in the key's hash order to #order and returns
   * how many: from the table in use, passing over members no longer routable, or from
   * the rendezvous fallback when the table has none left (or there is no table yet).
   */
  #collect(hash: number, want: number): number {
    if (this.#order.length < want) this.#order = new Uint32Array(Math.max(want, this.#order.length * 2));
    const table = this.#table;
    if (table === null || this.#tableLive === 0) return this.#fallbackTable().order(hash, this.#order, want);
    const map = this.#tableSlot;
    const out = this.#order;
    const need = Math.min(want, this.#tableLive);
    // Fresh table: the first pass finds them all. Stale: ask for more of the order
    // until enough routable members turn up (at most the whole table).
    let ask = Math.min(table.size, need);
    for (;;) {
      if (this.#raw.length < ask) this.#raw = new Uint32Array(Math.max(ask, this.#raw.length * 2));
      const raw = this.#raw;
      const n = table.order(hash, raw, ask);
      let count = 0;
      for (let i = 0; i < n && count < need; i++) {
        const slot = map[raw[i]!]!;
        if (slot >= 0) out[count++] = slot;
      }
      if (count >= need || n >= table.size) return count;
      ask = Math.min(table.size, ask * 2 + need);
    }
  }

  #fallbackTable(): LookupTable {
    if (this.#fallback === null) {
      this.#fallback = new RendezvousTable(buildRendezvous(this.#view.members.map((u) => ({ name: u.name, weight: u.weight }))));
    }
    return this.#fallback;
  }

  #twoChoices(maxCandidates: number): Upstream[] {
    const routable = this.#view.members;
    const chosen = pickTwoChoices(routable.length, this.#view.loads, this.#view.weights);
    const out = [routable[chosen]!];
    if (maxCandidates > 1) {
      // Fallbacks for a failed connect: the least loaded of the rest.
      const rest = routable.filter((u) => u !== out[0]).sort((a, b) => a.active / a.weight - b.active / b.weight);
      for (const u of rest) {
        if (out.length >= maxCandidates) break;
        out.push(u);
      }
    }
    return out;
  }

  /** Puts `upstream` in the routable view or takes it out, as its state says. */
  place(upstream: Upstream): void {
    this.#fallback = null;
    const view = this.#view;
    const listed = view.has(upstream);
    if (upstream.routable) {
      if (!listed) {
        view.join(upstream);
        this.#remap(upstream);
      } else view.reweigh(upstream);
    } else if (listed) {
      const moved = view.leave(upstream);
      this.#remap(upstream);
      if (moved !== null) this.#remap(moved);
    }
  }

  /** place() for every upstream (start-up, reload): those that left first. */
  placeAll(upstreams: Iterable<Upstream>): void {
    for (const u of this.#view.snapshot()) if (!u.routable) this.place(u);
    for (const u of upstreams) this.place(u);
  }

  /** `upstream`'s slot changed: so does its entry in the table's map, if it has one. */
  #remap(upstream: Upstream): void {
    const index = upstream.tableIndex;
    if (index < 0 || this.#tableUpstreams[index] !== upstream) return;
    const before = this.#tableSlot[index]!;
    const after = upstream.slot;
    this.#tableSlot[index] = after;
    this.#tableLive += (after >= 0 ? 1 : 0) - (before >= 0 ? 1 : 0);
  }

  /** A new table: its whole map, O(N) with no allocation once the map has grown to fit. */
  #mapTable(): void {
    const upstreams = this.#tableUpstreams;
    if (this.#tableSlot.length < upstreams.length) this.#tableSlot = new Int32Array(Math.max(upstreams.length, this.#tableSlot.length * 2));
    const map = this.#tableSlot;
    let live = 0;
    for (let i = 0; i < upstreams.length; i++) {
      const u = upstreams[i]!;
      u.tableIndex = i;
      const slot = u.slot;
      map[i] = slot;
      if (slot >= 0) live++;
    }
    this.#tableLive = live;
  }
}
