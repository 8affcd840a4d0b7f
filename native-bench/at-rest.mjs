#!/usr/bin/env node
/**
 * tether at rest, second by second: a fresh instance with N upstreams (addresses that
 * take no traffic: health checks off, no clients) and K workers, and how often each of
 * its processes woke in every second (voluntary context switches of all its threads,
 * /proc/PID/task/TID/status) and its CPU over the run. Shows start-up settling (V8
 * shrinks a new heap some 8-20 s after start, larger heaps later) and what wakes an
 * instance at rest after that. Not part of `npm run bench`; the side-by-side at rest
 * with HAProxy and nginx is `run.mjs --workloads=quiet` (docs/performance.md, "At rest").
 *
 *   node native-bench/at-rest.mjs [--upstreams=5000] [--workers=2] [--seconds=40]
 *        [--tether=PATH/dist/cli.js] [--out=NAME]   (writes results/NAME.json, default at-rest)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childrenOf, cpuOf, wakesOf } from './background.mjs';
import { freePort, sleep } from './local.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const opts = { upstreams: 5000, workers: 2, seconds: 40, tether: resolve(here, '..', 'dist', 'cli.js'), out: 'at-rest' };
for (const arg of process.argv.slice(2)) {
  const at = arg.indexOf('=');
  const key = arg.slice(2, at < 0 ? undefined : at);
  const value = at < 0 ? undefined : arg.slice(at + 1);
  if (!(key in opts) || value === undefined) {
    console.error(`at-rest: unknown option ${arg}`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === 'number' ? Number(value) : value;
  if (typeof opts[key] === 'number' && !(opts[key] > 0)) {
    console.error(`at-rest: --${key} takes a positive number`);
    process.exit(2);
  }
}

const upstreams = Array.from({ length: opts.upstreams }, (_, i) => `u${i}=127.0.${1 + (i >> 8)}.${i & 255}:9`).join(',');
const port = await freePort();
const child = spawn(process.execPath, [opts.tether], {
  stdio: 'ignore',
  env: {
    PATH: process.env.PATH ?? '',
    TETHER_UPSTREAMS: upstreams,
    TETHER_LISTEN: `127.0.0.1:${port}`,
    TETHER_ADMIN: 'off',
    TETHER_HEALTH: 'off',
    TETHER_ACCESS_LOG: 'off',
    TETHER_LOG_LEVEL: 'warn',
    TETHER_WORKERS: String(opts.workers),
  },
});
const perSecond = [];
let last = new Map();
const cpu0 = new Map();
for (let s = 1; s <= opts.seconds; s++) {
  await sleep(1000);
  const pids = [child.pid, ...childrenOf(child.pid)];
  const row = {};
  for (const pid of pids) {
    if (!cpu0.has(pid)) cpu0.set(pid, cpuOf(pid));
    const now = wakesOf([pid]);
    if (last.has(pid)) row[pid] = now - last.get(pid);
    last.set(pid, now);
  }
  last = new Map([...last].filter(([pid]) => pids.includes(pid)));
  if (s > 1) perSecond.push({ second: s, wakes: row });
  console.log(`t=${String(s).padStart(3)} s  ${Object.entries(row).map(([pid, n]) => `${pid}: ${n}`).join('  ')}`);
}
const cpuPct = Object.fromEntries([...cpu0].map(([pid, c]) => [pid, Math.round(((cpuOf(pid) - c) / (opts.seconds - 1)) * 1000) / 10]));
child.kill('SIGTERM');
console.log(`CPU, % of a core from second 1 on: ${Object.entries(cpuPct).map(([pid, p]) => `${pid}: ${p}`).join('  ')}`);
const out = join(here, 'results', `${opts.out}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, ...opts, tether: opts.tether, perSecond, cpuPct }, null, 2)}\n`);
console.log(`at-rest: wrote ${out}`);
