import { describe, expect, it } from 'vitest';
import type { DrainRecord, MemberRecord, MembershipSnapshot, MembershipWrite } from '../../../src/store/types.js';
import type { UpstreamSpec } from '../../../src/config/types.js';
import { effectiveMembership, writeFor, type AdminChange } from '../../../src/membership/overrides.js';

const up = (name: string, port: number, weight = 1): UpstreamSpec => ({ name, host: '10.0.0.1', port, weight });
const FILE = [up('a', 1), up('b', 2), up('c', 3)];
const NOW = 1_700_000_000_000;

/** The snapshot that a series of admin changes on an instance with `base` leaves in the store. */
function stored(base: readonly UpstreamSpec[], changes: readonly AdminChange[]): MembershipSnapshot {
  const members = new Map<string, MemberRecord>();
  const drains = new Map<string, DrainRecord>();
  const apply = (write: MembershipWrite): void => {
    if (write.member === null) members.delete(write.upstream);
    else if (write.member !== undefined) members.set(write.upstream, write.member);
    if (write.drain === null) drains.delete(write.upstream);
    else if (write.drain !== undefined) drains.set(write.upstream, write.drain);
  };
  for (const change of changes) apply(writeFor(change, base, 'i1', NOW));
  return { version: changes.length, members, drains };
}

const names = (specs: readonly UpstreamSpec[]): string[] => specs.map((u) => `${u.name}@${u.port}*${u.weight}`);

describe('effective membership: file plus stored admin changes', () => {
  it.each<[string, AdminChange[], string[], [string, number | null][]]>([
    ['nothing stored: the file', [], ['a@1*1', 'b@2*1', 'c@3*1'], []],
    ['PUT adds after the file', [{ op: 'put', upstream: 'd', host: '10.0.0.1', port: 4, weight: 2 }], ['a@1*1', 'b@2*1', 'c@3*1', 'd@4*2'], []],
    ['PUT changes in place', [{ op: 'put', upstream: 'b', host: '10.0.0.1', port: 22, weight: 3 }], ['a@1*1', 'b@22*3', 'c@3*1'], []],
    ['DELETE removes', [{ op: 'delete', upstream: 'a' }], ['b@2*1', 'c@3*1'], []],
    ['drain, with and without a deadline', [{ op: 'drain', upstream: 'a' }, { op: 'drain', upstream: 'b', deadlineS: 30 }], ['a@1*1', 'b@2*1', 'c@3*1'], [['a', null], ['b', NOW + 30_000]]],
    ['undrain clears the drain', [{ op: 'drain', upstream: 'a' }, { op: 'undrain', upstream: 'a' }], ['a@1*1', 'b@2*1', 'c@3*1'], []],
    ['DELETE clears its drain', [{ op: 'drain', upstream: 'a' }, { op: 'delete', upstream: 'a' }], ['b@2*1', 'c@3*1'], []],
    ['PUT then DELETE of an added upstream', [{ op: 'put', upstream: 'd', host: 'h', port: 4, weight: 1 }, { op: 'delete', upstream: 'd' }], ['a@1*1', 'b@2*1', 'c@3*1'], []],
    ['DELETE then PUT brings it back', [{ op: 'delete', upstream: 'c' }, { op: 'put', upstream: 'c', host: '10.0.0.1', port: 33, weight: 1 }], ['a@1*1', 'b@2*1', 'c@33*1'], []],
  ])('%s', (_, changes, expected, draining) => {
    const effective = effectiveMembership(FILE, stored(FILE, changes));
    expect(names(effective.upstreams)).toEqual(expected);
    expect([...effective.draining]).toEqual(draining);
  });

  it('records exist only where the admin differs from the file', () => {
    const back = stored(FILE, [
      { op: 'put', upstream: 'b', host: '10.0.0.1', port: 22, weight: 1 },
      { op: 'put', upstream: 'b', host: '10.0.0.1', port: 2, weight: 1 },
      { op: 'put', upstream: 'd', host: 'h', port: 4, weight: 1 },
      { op: 'delete', upstream: 'd' },
    ]);
    expect(back.members.size).toBe(0);
  });

  it('the same stored changes give the same membership on every instance with the same file', () => {
    const snapshot = stored(FILE, [
      { op: 'put', upstream: 'd', host: 'h', port: 4, weight: 1 },
      { op: 'delete', upstream: 'a' },
      { op: 'drain', upstream: 'b' },
    ]);
    const reordered = [FILE[2]!, FILE[0]!, FILE[1]!];
    const one = effectiveMembership(FILE, snapshot);
    const other = effectiveMembership(reordered, snapshot);
    expect(new Set(names(one.upstreams))).toEqual(new Set(names(other.upstreams)));
    expect(one.draining).toEqual(other.draining);
  });

  it('once a file says something else of an upstream, the file wins there (drains stay)', () => {
    const snapshot = stored(FILE, [
      { op: 'put', upstream: 'b', host: '10.0.0.1', port: 22, weight: 1 },
      { op: 'delete', upstream: 'c' },
      { op: 'put', upstream: 'd', host: 'h', port: 4, weight: 1 },
      { op: 'drain', upstream: 'a' },
    ]);
    // A newer file: b's weight changed, c's address changed, d added with another port, a unchanged.
    const newer = [up('a', 1), up('b', 2, 5), up('c', 30), up('d', 40)];
    const effective = effectiveMembership(newer, snapshot);
    expect(names(effective.upstreams)).toEqual(['a@1*1', 'b@2*5', 'c@30*1', 'd@40*1']);
    expect([...effective.draining]).toEqual([['a', null]]);
    // A file that dropped b: the admin's change to b gives way too.
    expect(names(effectiveMembership([up('a', 1), up('c', 3)], snapshot).upstreams)).toEqual(['a@1*1', 'd@4*1']);
  });

  it('a drain of an upstream that is not there is kept but not applied', () => {
    const snapshot = stored(FILE, [{ op: 'drain', upstream: 'c' }]);
    expect([...effectiveMembership([up('a', 1)], snapshot).draining]).toEqual([]);
    expect([...effectiveMembership(FILE, snapshot).draining]).toEqual([['c', null]]);
  });
});
