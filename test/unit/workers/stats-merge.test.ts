import { describe, expect, it } from 'vitest';
import type { StatsSnapshot, UpstreamStats } from '../../../src/admin/page/stats.js';
import { addDeparted, mergeStats } from '../../../src/workers/stats-merge.js';

function upstream(name: string, active: number, total: number): UpstreamStats {
  return { name, address: `127.0.0.1:${name.length}`, state: 'up', weight: 1, active, total, fromClient: total * 10, toClient: total * 20, share: 0.5 };
}

function snapshot(active: number, ok: number, upstreams: UpstreamStats[]): StatsSnapshot {
  return {
    generatedAt: '2026-12-05T00:00:00.000Z',
    process: { pid: 1, node: 'v20', uptimeS: 1, rssBytes: 1, heapUsedBytes: 1 },
    keySample: 1000,
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:7000',
        mode: 'tcp',
        hash: 'ring',
        vnodes: 160,
        balanceFactor: 0,
        active,
        outcomes: { ok, refused: 1, no_upstream: 0, connect_failed: 0, bad_request: 0, timeout: 0 },
        decisions: { learned: 0, hash: ok, p2c: 0 },
        fromClient: ok * 10,
        toClient: ok * 20,
        upstreams,
      },
    ],
    changes: [],
  };
}

describe('a dead worker on the stats page', () => {
  it('keeps its counts and drops its open connections, folding every dead worker into one snapshot', () => {
    const first = addDeparted(null, snapshot(4, 30, [upstream('a', 3, 20), upstream('b', 1, 10)]));
    const both = addDeparted(first, snapshot(2, 5, [upstream('a', 2, 5)]));
    const listener = both.listeners[0]!;
    expect(listener.active).toBe(0);
    expect(listener.outcomes.ok).toBe(35);
    expect(listener.outcomes.refused).toBe(2);
    expect(listener.decisions.hash).toBe(35);
    expect(listener.toClient).toBe(700);
    expect(listener.upstreams.map((u) => [u.name, u.active, u.total, u.toClient])).toEqual([
      ['a', 0, 25, 500],
      ['b', 0, 10, 200],
    ]);
  });

  it('keeps a listener that only a later dead worker had (added by a reload)', () => {
    const first = addDeparted(null, snapshot(0, 30, [upstream('a', 0, 30)]));
    const later = snapshot(1, 6, [upstream('a', 1, 6)]);
    const reloaded = { ...later, listeners: [...later.listeners, { ...later.listeners[0]!, name: 'admin-added', active: 2, outcomes: { ...later.listeners[0]!.outcomes, ok: 4 } }] };
    const both = addDeparted(first, reloaded);
    expect(both.listeners.map((l) => [l.name, l.active, l.outcomes.ok])).toEqual([
      ['main', 0, 36],
      ['admin-added', 0, 4],
    ]);
  });

  it('adds to the live workers\' counts on the merged page', () => {
    const own = snapshot(0, 0, [upstream('a', 0, 0), upstream('b', 0, 0)]);
    const live = snapshot(7, 12, [upstream('a', 7, 12)]);
    const departed = addDeparted(null, snapshot(9, 30, [upstream('b', 9, 30)]));
    const listener = mergeStats(own, [live, departed]).listeners[0]!;
    expect(listener.active).toBe(7);
    expect(listener.outcomes.ok).toBe(42);
    expect(Object.fromEntries(listener.upstreams.map((u) => [u.name, [u.active, u.total]]))).toEqual({ a: [7, 12], b: [0, 30] });
  });
});
