import { describe, expect, it } from 'vitest';
import { RoutableView } from '../../../src/routing/routable-view.js';
import { seededRandom } from '../../helpers/random.js';

interface Item {
  readonly name: string;
  slot: number;
  active: number;
  weight: number;
}

const item = (name: string, weight = 1, active = 0): Item => ({ name, slot: -1, active, weight });
const names = (view: RoutableView<Item>): string[] => view.members.map((m) => m.name);

/** Every slot holds its member, loads and weights match, and the sums are the sums. */
function expectConsistent(view: RoutableView<Item>, label: string): void {
  let active = 0;
  let weight = 0;
  view.members.forEach((m, slot) => {
    expect(m.slot, `${label}: ${m.name}`).toBe(slot);
    expect(view.has(m), label).toBe(true);
    expect(view.loads[slot], `${label}: load of ${m.name}`).toBe(m.active);
    expect(view.weights[slot], `${label}: weight of ${m.name}`).toBe(m.weight);
    active += m.active;
    weight += m.weight;
  });
  expect(view.active, label).toBe(active);
  expect(view.weight, label).toBe(weight);
}

describe('RoutableView', () => {
  it('swap-removes members that leave, appends members that join', () => {
    const view = new RoutableView<Item>();
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((n) => item(n));
    for (const m of [a, b, c, d, e]) view.join(m!);
    expect(names(view)).toEqual(['a', 'b', 'c', 'd', 'e']);
    // b leaves: the last member (e) takes its slot, nothing else moves.
    expect(view.leave(b!)).toBe(e);
    expect(names(view)).toEqual(['a', 'e', 'c', 'd']);
    expect(b!.slot).toBe(-1);
    expect(view.has(b!)).toBe(false);
    // The last member leaves: nothing moves.
    expect(view.leave(d!)).toBeNull();
    expect(names(view)).toEqual(['a', 'e', 'c']);
    view.join(b!);
    expect(names(view)).toEqual(['a', 'e', 'c', 'b']);
    // A member whose stale slot points at someone else's is not in the view.
    expect(view.has(d!)).toBe(false);
    d!.slot = 0;
    expect(view.has(d!)).toBe(false);
    expectConsistent(view, 'end');
  });

  it('snapshots are copies: later changes do not reach them', () => {
    const view = new RoutableView<Item>();
    const [a, b] = [item('a'), item('b')];
    view.join(a);
    view.join(b);
    const before = view.snapshot();
    view.leave(a);
    expect(before.map((m) => m.name)).toEqual(['a', 'b']);
    expect(names(view)).toEqual(['b']);
  });

  it('moves loads and weights with their members, counts connections, follows reweighs and grows past its capacity', () => {
    const view = new RoutableView<Item>();
    const items = Array.from({ length: 20 }, (_, i) => item(`m-${i}`, 1 + (i % 4), i));
    for (const m of items) view.join(m);
    expectConsistent(view, 'joined');
    // A connection opens to m-3 and another ends at m-5: the view counts by slot.
    items[3]!.active++;
    view.count(items[3]!.slot, 1);
    items[5]!.active--;
    view.count(items[5]!.slot, -1);
    view.leave(items[2]!);
    items[7]!.weight = 9;
    view.reweigh(items[7]!);
    expectConsistent(view, 'changed');
    // While out of the view a member's connections are not counted; back in, they are.
    items[2]!.active += 10;
    view.join(items[2]!);
    expectConsistent(view, 'rejoined');
  });

  it('over a random walk, holds exactly the members that joined and did not leave, and each leave moves at most one other', () => {
    const random = seededRandom(31);
    const view = new RoutableView<Item>();
    const everyone = Array.from({ length: 60 }, (_, i) => item(`m-${i}`, 1 + (i % 3), i % 5));
    const inside = new Set<Item>();
    for (let step = 0; step < 2000; step++) {
      const m = everyone[Math.floor(random() * everyone.length)]!;
      const before = view.snapshot();
      if (inside.has(m)) {
        if (random() < 0.2) {
          m.weight = 1 + Math.floor(random() * 5);
          view.reweigh(m);
        } else {
          view.leave(m);
          inside.delete(m);
        }
      } else {
        view.join(m);
        inside.add(m);
      }
      expect(new Set(view.members), `step ${step}`).toEqual(inside);
      const moved = view.members.filter((x, slot) => before.includes(x) && before.indexOf(x) !== slot);
      expect(moved.length, `step ${step}`).toBeLessThanOrEqual(1);
      if (step % 50 === 0) expectConsistent(view, `step ${step}`);
    }
    expectConsistent(view, 'end');
  });
});
