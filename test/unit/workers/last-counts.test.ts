import { describe, expect, it } from 'vitest';
import { LastCounts } from '../../../src/workers/last-counts.js';
import { parseExposition } from '../../../src/workers/metrics-merge.js';

/** A worker's answer: one counter and one gauge. */
function exposition(connections: number, active: number): ReturnType<typeof parseExposition> {
  return parseExposition(
    [
      '# HELP tether_connections_total Closed client connections.',
      '# TYPE tether_connections_total counter',
      `tether_connections_total{listener="main",upstream="a",outcome="ok"} ${connections}`,
      '# HELP tether_connections_active Open client connections.',
      '# TYPE tether_connections_active gauge',
      `tether_connections_active{listener="main",upstream="a"} ${active}`,
    ].join('\n'),
  );
}

const departed = (counts: LastCounts<string>): number | undefined =>
  counts.departedMetrics.of('tether_connections_total')?.get('tether_connections_total{listener="main",upstream="a",outcome="ok"}');

describe('LastCounts: what a worker that dies leaves in the totals', () => {
  it('keeps the counters of its latest read, and only the counters and histograms', () => {
    const counts = new LastCounts<string>();
    expect(counts.kept).toBeNull();
    counts.sawMetrics('w1', counts.asking(), exposition(10, 3));
    counts.sawMetrics('w1', counts.asking(), exposition(25, 1));
    // Reads for the departed ask for the counters only, once any were seen.
    expect(counts.kept).toEqual(['tether_connections_total']);
    counts.gone('w1');
    expect(departed(counts)).toBe(25);
    expect(counts.departedMetrics.of('tether_connections_active')).toBeUndefined();
  });

  it('an answer to an earlier question that comes back last does not replace a later one', () => {
    const counts = new LastCounts<string>();
    const first = counts.asking();
    const second = counts.asking();
    counts.sawMetrics('w1', second, exposition(40, 0));
    counts.sawMetrics('w1', first, exposition(30, 0));
    counts.gone('w1');
    expect(departed(counts)).toBe(40);
  });

  it('adds up every dead worker, and forgets each once folded in', () => {
    const counts = new LastCounts<string>();
    counts.sawMetrics('w1', counts.asking(), exposition(7, 0));
    counts.sawMetrics('w2', counts.asking(), exposition(5, 0));
    counts.gone('w1');
    counts.gone('w1');
    counts.gone('w2');
    expect(departed(counts)).toBe(12);
  });
});
