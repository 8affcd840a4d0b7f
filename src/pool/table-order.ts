/**
 * The order of the member list a pool hands to its table builder, kept stable from
 * one build to the next.
 *
 * A table's owner indices refer to this list, so its order decides how much of a
 * ring the builder must renumber after a change (balancer/ring.ts, updateRing). In
 * the pool's insertion order, draining upstream i shifts every upstream after it: a
 * pass over every point. Here a member that leaves is replaced by the last one
 * (swap-remove) and a member that joins is appended, so a one-upstream change moves
 * at most one other member's index. Routing never depends on the order: a key's
 * upstream follows from point hashes and names alone.
 */
export class TableOrder<T> {
  /** The list last handed out; never mutated once handed out. */
  #sent: readonly T[] = [];
  /** Index of each member in #sent. */
  readonly #index = new Map<T, number>();

  /**
   * A new list holding exactly `current`: the last list handed out with the members
   * not in `current` swap-removed (`stays(member)` says whether one is), then the
   * members of `current` it lacked appended in `current`'s order. The result becomes
   * the list the next call starts from.
   */
  next(current: readonly T[], stays: (member: T) => boolean): T[] {
    const order = this.#sent.slice();
    const index = this.#index;
    for (let i = 0; i < order.length; ) {
      const member = order[i]!;
      if (stays(member)) {
        i++;
        continue;
      }
      index.delete(member);
      const last = order.pop()!;
      if (i < order.length) {
        // The last member fills the hole; it is checked next, at its new index.
        order[i] = last;
        index.set(last, i);
      }
    }
    for (const member of current) {
      if (index.has(member)) continue;
      index.set(member, order.length);
      order.push(member);
    }
    this.#sent = order;
    return order;
  }
}
