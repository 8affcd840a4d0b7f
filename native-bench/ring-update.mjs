#!/usr/bin/env node
/**
 * What one membership change costs the thread that builds tables.
 *
 *   npm run build && node native-bench/ring-update.mjs [--quick] [--sizes=100,1000,5000] [--repeats=N]
 *
 * For each pool size N (N upstreams x 160 vnodes, ring), an UpstreamPool builds its
 * tables in a real worker thread (WorkerTableBuilder, one thread) as tether does, and
 * one upstream in the middle of the list is drained and undrained over and over, each
 * change awaited (settled) before the next. The time per change is the worker's own
 * (what tether_ring_build_seconds reports): the ring derived from the thread's last one,
 * written into the spare buffers the pool sends back, and the thread's private copy of
 * the new ring (RingCache copy: true), since the built arrays move to the routing thread.
 * The full build column is the same worker building the ring whole (no series key).
 *
 * Prints a markdown table (medians, and the quickest), writes
 * native-bench/results/ring-update.json. Waits for a quiet moment before each size and
 * records how much CPU other processes took meanwhile (a shared machine).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UpstreamPool } from '../dist/routing/pool.js';
import { WorkerTableBuilder } from '../dist/builders/worker.js';
import { cpuSnapshot, otherCpuPct, waitQuiet } from './background.mjs';
import { median } from './local.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const options = { sizes: [100, 1000, 5000], repeats: 21, fullRepeats: 7, quick: false };
for (const arg of process.argv.slice(2)) {
  const [k, v] = arg.split('=');
  if (k === '--quick') Object.assign(options, { quick: true, repeats: 15, fullRepeats: 3 });
  else if (k === '--sizes') options.sizes = v.split(',').map(Number);
  else if (k === '--repeats') options.repeats = Number(v);
  else {
    process.stderr.write(`ring-update: unknown option ${arg}\n`);
    process.exit(2);
  }
}

const VNODES = 160;
const WARMUP = 5;

const ms = (seconds) => seconds * 1000;

const builder = new WorkerTableBuilder(1);
const rows = [];
for (const n of options.sizes) {
  const specs = Array.from({ length: n }, (_, i) => ({ name: `pod-${i}.default.svc`, host: '127.0.0.1', port: 9, weight: 1 }));
  await waitQuiet(30_000);
  const before = cpuSnapshot();

  // Whole builds in the same thread (no key: nothing derived, nothing remembered).
  const full = [];
  for (let i = 0; i < options.fullRepeats + 1; i++) {
    const built = await builder.build({ algorithm: 'ring', members: specs, options: { vnodes: VNODES } });
    if (i > 0) full.push(built.seconds);
  }

  const builds = [];
  const pool = new UpstreamPool({ algorithm: 'ring', vnodes: VNODES, balanceFactor: 0 }, specs, {
    builder,
    onTableBuilt: (seconds, incremental) => builds.push({ seconds, incremental }),
  });
  if (!(await pool.settled(120_000))) throw new Error(`first table of ${n} not built`);
  const middle = specs[Math.floor(n / 2)].name;
  const drain = [];
  const undrain = [];
  let fullAmongChanges = 0;
  for (let i = 0; i < WARMUP + options.repeats; i++) {
    for (const [change, into] of [
      [() => pool.drain(middle), drain],
      [() => pool.undrain(middle), undrain],
    ]) {
      const seen = builds.length;
      change();
      if (!(await pool.settled(120_000))) throw new Error(`change at ${n} not built`);
      const built = builds.slice(seen);
      if (built.length !== 1) throw new Error(`expected one build per change, got ${built.length}`);
      if (!built[0].incremental) fullAmongChanges++;
      if (i >= WARMUP) into.push(built[0].seconds);
    }
  }
  pool.close();
  const otherCpu = otherCpuPct(before, cpuSnapshot());
  const row = {
    upstreams: n,
    points: n * VNODES,
    fullMs: { median: ms(median(full)), min: ms(Math.min(...full)), samples: full.length },
    drainMs: { median: ms(median(drain)), min: ms(Math.min(...drain)), samples: drain.length },
    undrainMs: { median: ms(median(undrain)), min: ms(Math.min(...undrain)), samples: undrain.length },
    fullAmongChanges,
    otherCpuPct: Math.round(otherCpu),
  };
  rows.push(row);
  process.stderr.write(`ring-update: ${n} upstreams done\n`);
}
await builder.close();

const f = (x) => (x < 0.995 ? x.toFixed(2) : x < 9.95 ? x.toFixed(1) : x.toFixed(0));
const lines = [];
lines.push(`### One-upstream change, in the build thread (${VNODES} vnodes, medians; quickest in brackets)`);
lines.push('');
lines.push('| upstreams | points | full build | drain | undrain | other CPU |');
lines.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  lines.push(
    `| ${r.upstreams.toLocaleString('en-US')} | ${r.points.toLocaleString('en-US')} | ${f(r.fullMs.median)} ms (${f(r.fullMs.min)}) | ` +
      `${f(r.drainMs.median)} ms (${f(r.drainMs.min)}) | ${f(r.undrainMs.median)} ms (${f(r.undrainMs.min)}) | ${r.otherCpuPct}% |`,
  );
}
lines.push('');
lines.push(
  `${options.repeats} drains and ${options.repeats} undrains of the middle upstream per size after ${WARMUP} of each to warm up; ` +
    `full builds: ${options.fullRepeats}. A change built whole instead of derived: ${rows.map((r) => r.fullAmongChanges).join(', ')}.`,
);
const text = lines.join('\n');
console.log(text);

mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(
  join(here, 'results', 'ring-update.json'),
  `${JSON.stringify({ generated: new Date().toISOString(), node: process.version, cpu: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`, options, rows, markdown: text }, null, 2)}\n`,
);
console.log('\nwrote native-bench/results/ring-update.json');
