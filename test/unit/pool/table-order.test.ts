import { describe, expect, it } from 'vitest';
import { TableOrder } from '../../../src/pool/table-order.js';
import { seededRandom } from '../../helpers/random.js';

/** One call of next() with `current` as the members that stay. */
function next(order: TableOrder<string>, current: readonly string[]): string[] {
  const set = new Set(current);
  return order.next(current, (m) => set.has(m));
}

describe('TableOrder', () => {
  it('swap-removes members that leave, appends members that join, and hands out a new array each time', () => {
    const order = new TableOrder<string>();
    const first = next(order, ['a', 'b', 'c', 'd', 'e']);
    expect(first).toEqual(['a', 'b', 'c', 'd', 'e']);
    // b leaves: the last member (e) takes its index, nothing else moves.
    const second = next(order, ['a', 'c', 'd', 'e']);
    expect(second).toEqual(['a', 'e', 'c', 'd']);
    expect(first).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(second).not.toBe(first);
    // b comes back (at the end), f joins: in the order of `current`.
    expect(next(order, ['f', 'a', 'b', 'c', 'd', 'e'])).toEqual(['a', 'e', 'c', 'd', 'f', 'b']);
  });

  it('handles the edge cases of several members leaving at once', () => {
    const cases: [string, string[], string[], string[]][] = [
      ['the last member leaves: nothing moves', ['a', 'b', 'c'], ['a', 'b'], ['a', 'b']],
      ['the member that would fill the hole leaves too', ['a', 'b', 'c', 'd'], ['a', 'c'], ['a', 'c']],
      ['two holes, filled from the end', ['a', 'b', 'c', 'd', 'e', 'f'], ['a', 'c', 'e', 'f'], ['a', 'f', 'c', 'e']],
      ['every member leaves', ['a', 'b'], [], []],
      ['all leave but one, and one joins', ['a', 'b', 'c'], ['c', 'x'], ['c', 'x']],
      ['nothing changes', ['a', 'b'], ['b', 'a'], ['a', 'b']],
    ];
    for (const [label, start, current, expected] of cases) {
      const order = new TableOrder<string>();
      next(order, start);
      expect(next(order, current), label).toEqual(expected);
    }
  });

  it('over a random walk, always holds exactly the current members, and a one-member change moves at most one other', () => {
    const random = seededRandom(11);
    const order = new TableOrder<string>();
    let members = Array.from({ length: 40 }, (_, i) => `m-${i}`);
    let sent = next(order, members);
    let fresh = 40;
    for (let step = 0; step < 500; step++) {
      const single = random() < 0.8;
      const changes = single ? 1 : 2 + Math.floor(random() * 6);
      let current = members.slice();
      for (let c = 0; c < changes; c++) {
        if (current.length > 2 && random() < 0.5) current.splice(Math.floor(random() * current.length), 1);
        else current.push(random() < 0.5 ? `m-${fresh++}` : `m-${Math.floor(random() * fresh)}`);
        current = [...new Set(current)];
      }
      const out = next(order, current);
      expect(new Set(out).size, `step ${step}`).toBe(out.length);
      expect([...out].sort(), `step ${step}`).toEqual([...current].sort());
      if (single) {
        const stayed = sent.filter((m) => current.includes(m));
        const moved = stayed.filter((m) => out.indexOf(m) !== sent.indexOf(m));
        expect(moved.length, `step ${step}`).toBeLessThanOrEqual(1);
      }
      members = current;
      sent = out;
    }
  });
});
