import { describe, expect, it } from 'vitest';
import { UpstreamPool } from '../../../src/routing/pool.js';
import { applySnapshot, snapshotOf } from '../../../src/workers/membership-snapshot.js';

const OPTIONS = { algorithm: 'ring', vnodes: 40, balanceFactor: 0 } as const;
const spec = (name: string, port: number, weight = 1) => ({ name, host: '127.0.0.1', port, weight });

describe('membership snapshots', () => {
  it('a worker applying the control plane\'s snapshot routes every key alike', async () => {
    const plane = new UpstreamPool(OPTIONS, [spec('a', 1), spec('b', 2), spec('c', 3)]);
    const worker = new UpstreamPool(OPTIONS, [spec('a', 1), spec('b', 2), spec('c', 3)]);
    plane.put('d', '127.0.0.1', 4, 3);
    plane.remove('b');
    plane.setHealth('c', false, 'check failed');
    plane.drain('a', 60);
    applySnapshot(worker, snapshotOf(plane));
    // Deadlines are checked below, within the milliseconds between two clock reads.
    const withoutDeadlines = (pool: UpstreamPool) => snapshotOf(pool).map((u) => ({ ...u, drainDeadlineAt: u.drainDeadlineAt !== null }));
    expect(withoutDeadlines(worker)).toEqual(withoutDeadlines(plane));
    await Promise.all([plane.settled(5_000), worker.settled(5_000)]);
    for (let i = 0; i < 500; i++) expect(worker.route(`key-${i}`, 3).candidates.map((u) => u.name)).toEqual(plane.route(`key-${i}`, 3).candidates.map((u) => u.name));
    expect(worker.get('a')!.drainDeadlineAt! - plane.get('a')!.drainDeadlineAt!).toBeLessThan(50);
    plane.close();
    worker.close();
  });

  it('undrains, raises and keeps a drain whose deadline did not move', () => {
    const plane = new UpstreamPool(OPTIONS, [spec('a', 1), spec('b', 2)]);
    const worker = new UpstreamPool(OPTIONS, [spec('a', 1), spec('b', 2)]);
    plane.drain('a', 30);
    plane.setHealth('b', false, 'down');
    applySnapshot(worker, snapshotOf(plane));
    const timer = worker.get('a')!.drainTimer;
    applySnapshot(worker, snapshotOf(plane));
    expect(worker.get('a')!.drainTimer).toBe(timer);
    plane.undrain('a');
    plane.setHealth('b', true, 'up');
    applySnapshot(worker, snapshotOf(plane));
    expect(worker.get('a')!.state).toBe('up');
    expect(worker.get('b')!.state).toBe('up');
    expect(worker.get('a')!.drainDeadlineAt).toBeNull();
    plane.close();
    worker.close();
  });
});
