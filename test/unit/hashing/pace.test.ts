import { afterEach, describe, expect, it } from 'vitest';
import { buildTableData, rebuildTableData } from '../../../src/hashing/tables.js';
import { pace, setPace, slicedPace } from '../../../src/hashing/pace.js';
import type { RingData } from '../../../src/hashing/types.js';
import { RingCache } from '../../../src/hashing/ring/cache.js';
import { members } from './helpers.js';

afterEach(() => setPace(null));

describe('build pacing', () => {
  it('does nothing until a pacer is installed, and calls the installed one', () => {
    let calls = 0;
    pace();
    setPace(() => calls++);
    pace();
    pace();
    setPace(null);
    pace();
    expect(calls).toBe(2);
  });

  it('rests once a slice of work is used up, and begin() starts a fresh slice', () => {
    const eager = slicedPace({ sliceMs: 0, restMs: 0.01 });
    eager.pace();
    eager.pace();
    expect(eager.counts.rests).toBe(2);
    const lazy = slicedPace({ sliceMs: 60_000, restMs: 0.01 });
    lazy.begin();
    for (let i = 0; i < 1000; i++) lazy.pace();
    expect(lazy.counts.rests).toBe(0);
  });

  it('paces every way of building (whole ring, merge, patch, the cache\'s copy, Maglev) and changes no table', () => {
    const pacer = slicedPace({ sliceMs: 0, restMs: 0.001 });
    const options = { vnodes: 160 };
    const list = members(400);
    // A drain as the pool orders it: the last member takes the drained one's index.
    const drained = list.slice(0, -1);
    drained[17] = list[list.length - 1]!;
    const half = list.slice(0, 200);
    const unpaced = {
      whole: buildTableData('ring', list, options),
      patched: buildTableData('ring', drained, options),
      merged: buildTableData('ring', half, options),
      maglev: buildTableData('maglev', list, options),
    };
    setPace(pacer.pace);
    const rests = (): number => pacer.counts.rests;
    const counted = <T>(work: () => T): { value: T; rested: number } => {
      const before = rests();
      const value = work();
      return { value, rested: rests() - before };
    };
    const whole = counted(() => buildTableData('ring', list, options) as RingData);
    expect(whole.value).toEqual(unpaced.whole);
    expect(whole.rested).toBeGreaterThan(list.length);
    const patched = counted(() => rebuildTableData(whole.value, 'ring', drained, options));
    expect(patched.value.patch).not.toBeNull();
    expect(patched.value.data).toEqual(unpaced.patched);
    expect(patched.rested).toBeGreaterThan(0);
    const merged = counted(() => rebuildTableData(whole.value, 'ring', half, options));
    expect(merged.value.incremental && merged.value.patch === null).toBe(true);
    expect(merged.value.data).toEqual(unpaced.merged);
    expect(merged.rested).toBeGreaterThan(0);
    // A worker's cache copies each ring it keeps (patched: edited in place).
    const cache = new RingCache({ copy: true });
    const kept = counted(() => cache.build('k', 'ring', list, options));
    expect(kept.rested).toBeGreaterThan(whole.rested);
    const edited = counted(() => cache.build('k', 'ring', drained, options));
    expect(edited.value.data).toEqual(unpaced.patched);
    expect(edited.rested).toBeGreaterThan(0);
    const maglev = counted(() => buildTableData('maglev', list, options));
    expect(maglev.value).toEqual(unpaced.maglev);
    expect(maglev.rested).toBeGreaterThan(0);
  });
});
