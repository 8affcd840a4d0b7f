/**
 * The upstreams a pool may route new keys to, in a stable order, with the per-slot
 * loads and weights its pickers read.
 *
 * Kept up to date one upstream at a time: a member that leaves is replaced by the
 * last one (swap-remove) and a member that joins is appended, so a drain, an undrain
 * or a health flap costs O(1) here, and no allocation, whatever the pool's size (a
 * rebuild of the whole view cost the routing thread ~0.2 ms per change at 5,000
 * upstreams). The same order is the member order of the next table build: a
 * one-upstream change moves at most one other member's index, which is what lets the
 * builder patch only those members' points (hashing/ring/build.ts, updateRing) and send
 * the build thread only the positions that changed (builders/member-list.ts). Routing
 * never depends on the order: a key's upstream follows from hashes and names alone.
 */

/** What the view needs of a member: it owns `slot`; `active`, `elsewhere` and `weight` are read. */
export interface ViewMember {
  /** Index in the view's list, -1 when not in it. Written by the view only. */
  slot: number;
  readonly active: number;
  /** Connections to it held by the other workers of TETHER_WORKERS (counted in its load). */
  readonly elsewhere?: number;
  readonly weight: number;
}

export class RoutableView<T extends ViewMember> {
  readonly #members: T[] = [];
  /** Active connections per slot, kept in step by the pool's acquire/release. */
  #loads = new Float64Array(8);
  #weights = new Float64Array(8);
  #active = 0;
  #weight = 0;

  /** The members by slot. Live: changes with the view; copy it to keep it (snapshot()). */
  get members(): readonly T[] {
    return this.#members;
  }

  get size(): number {
    return this.#members.length;
  }

  /** Per-slot active connections; longer than size (capacity), read the first size. */
  get loads(): Float64Array {
    return this.#loads;
  }

  /** Per-slot weights; longer than size (capacity), read the first size. */
  get weights(): Float64Array {
    return this.#weights;
  }

  /** Active connections over all members (as counted by acquire/release). */
  get active(): number {
    return this.#active;
  }

  /** Weight over all members. */
  get weight(): number {
    return this.#weight;
  }

  has(member: T): boolean {
    const slot = member.slot;
    return slot >= 0 && this.#members[slot] === member;
  }

  /** The members as of now, a new array. */
  snapshot(): T[] {
    return this.#members.slice();
  }

  /** Appends `member` (not in the view). */
  join(member: T): void {
    const slot = this.#members.length;
    if (slot === this.#loads.length) this.#grow();
    this.#members.push(member);
    member.slot = slot;
    const load = member.active + (member.elsewhere ?? 0);
    this.#loads[slot] = load;
    this.#weights[slot] = member.weight;
    this.#active += load;
    this.#weight += member.weight;
  }

  /**
   * Removes `member` (in the view); the last member takes its slot. Returns that
   * moved member, or null when `member` was the last.
   */
  leave(member: T): T | null {
    const slot = member.slot;
    const loads = this.#loads;
    const weights = this.#weights;
    this.#active -= loads[slot]!;
    this.#weight -= weights[slot]!;
    member.slot = -1;
    const last = this.#members.pop()!;
    if (last === member) return null;
    const from = this.#members.length;
    this.#members[slot] = last;
    last.slot = slot;
    loads[slot] = loads[from]!;
    weights[slot] = weights[from]!;
    return last;
  }

  /** `member` (in the view) has a new weight. */
  reweigh(member: T): void {
    const slot = member.slot;
    this.#weight += member.weight - this.#weights[slot]!;
    this.#weights[slot] = member.weight;
  }

  /** A connection to the member in `slot` opened (+1) or ended (-1); or the other workers' count of it moved. */
  count(slot: number, delta: number): void {
    this.#loads[slot] = this.#loads[slot]! + delta;
    this.#active += delta;
  }

  #grow(): void {
    const size = this.#loads.length * 2;
    const loads = new Float64Array(size);
    loads.set(this.#loads);
    const weights = new Float64Array(size);
    weights.set(this.#weights);
    this.#loads = loads;
    this.#weights = weights;
  }
}
