import { describe, expect, it } from 'vitest';
import { TurnBatch } from '../../../src/workers/turn-batch.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('TurnBatch', () => {
  it("sends one turn's items together, in order, once", async () => {
    const writes: number[][] = [];
    const batch = new TurnBatch<number>((items) => writes.push(items));
    batch.add(1);
    batch.add(2);
    batch.add(3);
    expect(writes).toEqual([]);
    await tick();
    expect(writes).toEqual([[1, 2, 3]]);
    batch.add(4);
    await tick();
    expect(writes).toEqual([[1, 2, 3], [4]]);
    await tick();
    expect(writes).toHaveLength(2);
  });

  it('flush sends what is queued at once, and the scheduled flush then sends nothing empty', async () => {
    const writes: string[][] = [];
    const batch = new TurnBatch<string>((items) => writes.push(items));
    batch.add('a');
    batch.flush();
    expect(writes).toEqual([['a']]);
    batch.add('b'); // queued behind the flush already scheduled: goes with it
    await tick();
    expect(writes).toEqual([['a'], ['b']]);
    batch.flush();
    await tick();
    expect(writes).toEqual([['a'], ['b']]);
  });
});
