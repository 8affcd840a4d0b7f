/**
 * Node's process metrics (process_*, nodejs_*), the families prom-client's
 * `collectDefaultMetrics` registers, in its order, with one exception:
 * nodejs_eventloop_lag_* read tether's event-loop sampler (loop-delay.ts) instead of
 * a `monitorEventLoopDelay` of prom-client's own, whose 10 ms timer would wake an idle
 * process 100 times a second. Names, help and meaning are prom-client's: gauges of the
 * samples since the previous scrape, in seconds, the sampling period included.
 *
 * prom-client exports no way to leave one default family out, so its modules are
 * loaded one by one from the list it exports (`metricsList`); a test compares the
 * families with those of `collectDefaultMetrics`.
 */
import { createRequire } from 'node:module';
import { Gauge, type Registry } from 'prom-client';
import { loopDelayReader, type LoopDelayReader } from './loop-delay.js';

type RegisterDefault = (registry: Registry, config: Record<string, never>) => void;

const require = createRequire(import.meta.url);
const LAG_MODULE = 'eventLoopLag';

/** Register Node's process metrics on `registry`; returns the event-loop reader to close with it. */
export function registerNodeMetrics(registry: Registry): LoopDelayReader {
  const { metricsList } = require('prom-client/lib/defaultMetrics') as { metricsList: readonly string[] };
  let reader: LoopDelayReader | null = null;
  for (const name of metricsList) {
    if (name === LAG_MODULE) reader = registerLoopLag(registry);
    else (require(`prom-client/lib/metrics/${name}`) as RegisterDefault)(registry, {});
  }
  return reader ?? registerLoopLag(registry);
}

const LAG_STATS = [
  ['min', 'The minimum recorded event loop delay.'],
  ['max', 'The maximum recorded event loop delay.'],
  ['mean', 'The mean of the recorded event loop delays.'],
  ['stddev', 'The standard deviation of the recorded event loop delays.'],
  ['p50', 'The 50th percentile of the recorded event loop delays.'],
  ['p90', 'The 90th percentile of the recorded event loop delays.'],
  ['p99', 'The 99th percentile of the recorded event loop delays.'],
] as const;

type LagStat = (typeof LAG_STATS)[number][0];

/** nodejs_eventloop_lag_* as prom-client writes them, from a reader of the process's sampler. */
function registerLoopLag(registry: Registry): LoopDelayReader {
  const reader = loopDelayReader();
  const registers = [registry];
  const stats = new Map<LagStat, Gauge>();
  const lag: Gauge = new Gauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds.',
    registers,
    aggregator: 'average',
    // As prom-client: this gauge's collect sets the whole family. The lag itself is
    // how long a setImmediate takes from here, written when it has run (so a scrape
    // shows the previous scrape's).
    collect: () => {
      const start = process.hrtime.bigint();
      setImmediate(() => lag.set(Number(process.hrtime.bigint() - start) / 1e9));
      const histogram = reader.take();
      const values: Record<LagStat, number> = {
        min: histogram.min,
        max: histogram.max,
        mean: histogram.mean,
        stddev: histogram.stddev,
        p50: histogram.percentile(50),
        p90: histogram.percentile(90),
        p99: histogram.percentile(99),
      };
      for (const [stat, gauge] of stats) gauge.set(values[stat] / 1e9);
      histogram.reset();
    },
  });
  for (const [stat, help] of LAG_STATS) {
    const aggregator = stat === 'min' || stat === 'max' ? stat : 'average';
    stats.set(stat, new Gauge({ name: `nodejs_eventloop_lag_${stat}_seconds`, help, registers, aggregator }));
  }
  return reader;
}
