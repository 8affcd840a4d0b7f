import { describe, expect, it } from 'vitest';
import type { Member } from '../../../src/hashing/types.js';
import { RoutableView } from '../../../src/routing/routable-view.js';
import { MemberListReceiver, MemberListSender, type MemberListMessage } from '../../../src/builders/member-list.js';
import { seededRandom } from '../../helpers/random.js';

interface Entry {
  readonly name: string;
  weight: number;
  slot: number;
  active: number;
}

const plain = (members: readonly Member[]): Member[] => members.map((m) => ({ name: m.name, weight: m.weight }));
/** As the message reaches a worker thread: cloned. */
const cross = (message: MemberListMessage): MemberListMessage => structuredClone(message);

describe('member lists sent as edits', () => {
  it('sends the first list whole, then only the positions that changed, and the receiver rebuilds each list', () => {
    const sender = new MemberListSender();
    const receiver = new MemberListReceiver();
    const view = new RoutableView<Entry>();
    const entries = Array.from({ length: 1000 }, (_, i): Entry => ({ name: `pod-${i}`, weight: 1, slot: -1, active: 0 }));
    for (const e of entries) view.join(e);
    const first = sender.encode('k', view.snapshot());
    expect(first.kind).toBe('whole');
    expect(plain(receiver.decode('k', cross(first))!)).toEqual(plain(view.members));
    // A drain: the drained slot gets the last member, the list is one shorter.
    view.leave(entries[10]!);
    const drain = sender.encode('k', view.snapshot());
    expect(drain).toMatchObject({ kind: 'edit', base: first.seq, length: 999 });
    expect(drain.kind === 'edit' && Array.from(drain.at)).toEqual([10]);
    expect(plain(receiver.decode('k', cross(drain))!)).toEqual(plain(view.members));
    // An undrain: appended.
    view.join(entries[10]!);
    const undrain = sender.encode('k', view.snapshot());
    expect(undrain.kind === 'edit' && Array.from(undrain.at)).toEqual([999]);
    expect(plain(receiver.decode('k', cross(undrain))!)).toEqual(plain(view.members));
    // A weight changed in place on the same object is an edit too.
    entries[500]!.weight = 3;
    const reweighed = sender.encode('k', view.snapshot());
    expect(reweighed.kind === 'edit' && Array.from(reweighed.at)).toEqual([500]);
    expect(receiver.decode('k', cross(reweighed))![500]).toEqual({ name: 'pod-500', weight: 3 });
    // Nothing changed: an empty edit.
    const same = sender.encode('k', view.snapshot());
    expect(same.kind === 'edit' && same.at.length).toBe(0);
    expect(plain(receiver.decode('k', cross(same))!)).toEqual(plain(view.members));
  });

  it('answers null for an edit of a list it does not have, and takes the whole list sent next', () => {
    const sender = new MemberListSender();
    const a = new MemberListReceiver();
    const b = new MemberListReceiver();
    const list = (n: number): Member[] => Array.from({ length: n }, (_, i) => ({ name: `m-${i}`, weight: 1 }));
    const one = list(5);
    a.decode('k', cross(sender.encode('k', one)));
    const two = [...one, { name: 'm-5', weight: 1 }];
    const edit = sender.encode('k', two);
    // Another thread (b) never saw the base; nor does anyone without a key.
    expect(b.decode('k', cross(edit))).toBeNull();
    expect(a.decode('other', cross(edit))).toBeNull();
    const whole = sender.encode('k', two, true);
    expect(whole.kind).toBe('whole');
    expect(b.decode('k', cross(whole))).toEqual(two);
    // a's base is now stale too (it missed the whole list): it must not apply the next edit.
    const three = two.slice(0, 4);
    const next = sender.encode('k', three);
    expect(a.decode('k', cross(next))).toBeNull();
    expect(b.decode('k', cross(next))).toEqual(three);
    // Without a key, always whole.
    expect(sender.encode(undefined, three).kind).toBe('whole');
    expect(sender.encode(undefined, three).kind).toBe('whole');
  });

  it('refuses an edit that does not describe a whole list', () => {
    const receiver = new MemberListReceiver();
    receiver.decode('k', { kind: 'whole', seq: 1, names: ['a', 'b'], weights: Uint16Array.of(1, 1) });
    const edit = (length: number, at: number[]): MemberListMessage => ({
      kind: 'edit',
      seq: 2,
      base: 1,
      length,
      at: Uint32Array.from(at),
      names: at.map((i) => `n-${i}`),
      weights: new Uint16Array(at.length).fill(1),
    });
    expect(() => receiver.decode('k', edit(4, [2]))).toThrow(RangeError); // position 3 left unwritten
    expect(() => receiver.decode('k', edit(2, [2]))).toThrow(RangeError); // past the end
    expect(() => receiver.decode('k', edit(3, [2, 2]))).toThrow(RangeError); // out of order
    expect(receiver.decode('k', edit(3, [0, 2]))!.map((m) => m.name)).toEqual(['n-0', 'b', 'n-2']);
  });

  it('over a random walk of joins, leaves and reweighs in several series, every list arrives as sent', () => {
    const random = seededRandom(41);
    const sender = new MemberListSender();
    const receiver = new MemberListReceiver();
    const series = ['a', 'b', 'c'].map((key) => {
      const view = new RoutableView<Entry>();
      const pool = Array.from({ length: 80 }, (_, i): Entry => ({ name: `${key}-${i}`, weight: 1, slot: -1, active: 0 }));
      for (const e of pool.slice(0, 50)) view.join(e);
      return { key, view, pool };
    });
    let edits = 0;
    for (let step = 0; step < 600; step++) {
      const { key, view, pool } = series[Math.floor(random() * series.length)]!;
      for (let c = 1 + Math.floor(random() * 3); c > 0; c--) {
        const e = pool[Math.floor(random() * pool.length)]!;
        if (!view.has(e)) view.join(e);
        else if (random() < 0.3) {
          e.weight = 1 + Math.floor(random() * 4);
          view.reweigh(e);
        } else view.leave(e);
      }
      const message = sender.encode(key, view.snapshot());
      if (message.kind === 'edit') {
        edits++;
        expect(message.at.length, `step ${step}`).toBeLessThanOrEqual(3);
      }
      expect(plain(receiver.decode(key, cross(message))!), `step ${step}`).toEqual(plain(view.members));
    }
    expect(edits).toBe(600 - 3);
  });
});
