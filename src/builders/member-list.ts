/**
 * How a build's member list travels to a build thread: whole the first time, then
 * as the positions that changed since the list sent before it.
 *
 * A pool hands its builder a list in a stable order (routing/routable-view.ts), so a
 * drain or an undrain changes one or two positions of it. Cloning the whole list
 * (5,000 names) into the worker cost the routing thread ~0.5 ms per change, more
 * than everything else a change costs it; the positions that changed cost a few
 * microseconds. The sender compares the new list with the last one it sent for the
 * same series (by identity and weight: O(N) reads, no allocation beyond the edits);
 * the receiver rebuilds the list from its copy of that last one.
 *
 * The receiver keeps one list per series, and only an edit of exactly that list is
 * applied: each message carries a sequence number, and an edit names the number of
 * its base. A thread that missed a build (several threads), or that was replaced
 * after a failure, answers that its base is stale and the sender sends the list
 * whole. Correctness never rests on the two sides agreeing; speed does.
 */
import type { Member } from '../hashing/types.js';

export type MemberListMessage =
  | {
      readonly kind: 'whole';
      readonly seq: number;
      readonly names: readonly string[];
      readonly weights: Uint16Array;
    }
  | {
      readonly kind: 'edit';
      readonly seq: number;
      /** The message whose list this edits. */
      readonly base: number;
      /** Length of the new list: the base list cut or grown to it, then the edits applied. */
      readonly length: number;
      /** Positions written; every position past the base list's end is among them. */
      readonly at: Uint32Array;
      readonly names: readonly string[];
      readonly weights: Uint16Array;
    };

/** Series remembered on each side; the least recently sent go first. */
const MAX_SERIES = 256;

interface Sent {
  readonly seq: number;
  readonly members: readonly Member[];
  /** Weights as sent: members are mutable objects (an Upstream's weight changes in place). */
  readonly weights: Uint16Array;
}

/** The routing thread's side: one per builder. */
export class MemberListSender {
  readonly #series = new Map<string, Sent>();
  #seq = 0;

  /**
   * The message for `members` in series `key`: an edit of the last list sent for
   * it, or whole (no key, nothing sent yet, `whole` asked for after a stale answer).
   */
  encode(key: string | undefined, members: readonly Member[], whole = false): MemberListMessage {
    const seq = ++this.#seq;
    const n = members.length;
    const weights = new Uint16Array(n);
    for (let i = 0; i < n; i++) weights[i] = members[i]!.weight;
    const last = key === undefined ? undefined : this.#series.get(key);
    if (key !== undefined) remember(this.#series, key, { seq, members, weights });
    if (last === undefined || whole) {
      const names = new Array<string>(n);
      for (let i = 0; i < n; i++) names[i] = members[i]!.name;
      return { kind: 'whole', seq, names, weights };
    }
    const before = last.members;
    const common = Math.min(before.length, n);
    let count = n - common;
    for (let i = 0; i < common; i++) if (members[i] !== before[i] || weights[i] !== last.weights[i]) count++;
    const at = new Uint32Array(count);
    const names = new Array<string>(count);
    const editWeights = new Uint16Array(count);
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (i < common && members[i] === before[i] && weights[i] === last.weights[i]) continue;
      at[k] = i;
      names[k] = members[i]!.name;
      editWeights[k] = weights[i]!;
      k++;
    }
    return { kind: 'edit', seq, base: last.seq, length: n, at, names, weights: editWeights };
  }

  /** Stop tracking a series (its pool closed). */
  forget(key: string): void {
    this.#series.delete(key);
  }
}

/** The build thread's side. */
export class MemberListReceiver {
  readonly #series = new Map<string, { readonly seq: number; readonly members: readonly Member[] }>();

  /**
   * The list `message` describes, remembered as the base of the next edit in series
   * `key`; null when it is an edit of a list this thread does not have (stale).
   * Throws a RangeError for an edit that does not describe a whole list.
   */
  decode(key: string | undefined, message: MemberListMessage): Member[] | null {
    let members: Member[];
    if (message.kind === 'whole') {
      const { names, weights } = message;
      members = new Array<Member>(names.length);
      for (let i = 0; i < names.length; i++) members[i] = { name: names[i]!, weight: weights[i]! };
    } else {
      const last = key === undefined ? undefined : this.#series.get(key);
      if (last === undefined || last.seq !== message.base) return null;
      members = applyEdit(last.members, message);
    }
    if (key !== undefined) remember(this.#series, key, { seq: message.seq, members });
    return members;
  }
}

/** `value` as the most recent entry of `series` under `key`; past MAX_SERIES the least recent goes. */
function remember<V>(series: Map<string, V>, key: string, value: V): void {
  series.delete(key);
  series.set(key, value);
  if (series.size > MAX_SERIES) series.delete(series.keys().next().value!);
}

function applyEdit(base: readonly Member[], edit: Extract<MemberListMessage, { kind: 'edit' }>): Member[] {
  const { length, at, names, weights } = edit;
  const members = base.slice(0, length);
  const filled = Math.min(base.length, length);
  let grown = 0;
  for (let k = 0; k < at.length; k++) {
    const i = at[k]!;
    if (i >= length || (k > 0 && i <= at[k - 1]!)) throw new RangeError(`member list edit: position ${i} out of order or past ${length}`);
    if (i >= filled) grown++;
    members[i] = { name: names[k]!, weight: weights[k]! };
  }
  // Positions past the base's end must all have been written (no holes).
  if (grown !== length - filled) throw new RangeError('member list edit leaves positions unwritten');
  return members;
}
