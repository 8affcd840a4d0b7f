import { describe, expect, it } from 'vitest';
import { SpareBuffers } from '../../../../src/hashing/ring/arena.js';
import { buildTableData, tableBuffers } from '../../../../src/hashing/tables.js';
import { members } from '../helpers.js';

describe('SpareBuffers', () => {
  it('reuses the smallest spare buffer that fits (up to twice the need), else allocates with headroom', () => {
    const small = new ArrayBuffer(400);
    const fits = new ArrayBuffer(1000);
    const huge = new ArrayBuffer(100_000);
    const arena = new SpareBuffers([huge, fits, small]);
    const a = arena.uint32(200); // 800 bytes: `fits`, not `huge`
    expect(a.buffer).toBe(fits);
    expect(a.length).toBe(200);
    const b = arena.uint32(200); // none left that fits: a new one, 1/8 larger
    expect(b.buffer).not.toBe(huge);
    expect(b.buffer.byteLength).toBeGreaterThanOrEqual(900);
    expect(arena.uint32(100).buffer).toBe(small);
  });

  it('builds the same ring and Maglev table into reused buffers as into fresh ones', () => {
    for (const algorithm of ['ring', 'maglev'] as const) {
      const first = buildTableData(algorithm, members(60), { vnodes: 50 });
      // Dirty buffers of a slightly larger table, as a drain leaves them.
      const spare = tableBuffers(buildTableData(algorithm, members(61), { vnodes: 50 }));
      const again = buildTableData(algorithm, members(60), { vnodes: 50 }, new SpareBuffers(spare));
      expect(again).toEqual(first);
      const reused = tableBuffers(again).filter((b) => spare.includes(b));
      expect(reused.length, algorithm).toBeGreaterThan(0);
    }
  });
});
