#!/usr/bin/env node
/**
 * Where a keep-alive request's CPU goes in each balancer, tcp mode, under
 * `wrk -t1 -c50` against the bench's upstreams (peers/upstream.mjs):
 *
 * - user and system CPU µs per request of all the balancer's processes (/proc), from a
 *   run without tracing;
 * - from a second run, counted by perf's system-call tracepoints over the same
 *   processes: system calls per request (all of them, and the reads, writes and
 *   epoll waits among them) and context switches per request.
 *
 * Rows: a bare-handle Node relay (peers/handle-relay.mjs: Node's floor, no balancing),
 * tether with 1 worker and with 2 (TETHER_WORKERS=2), HAProxy nbthread 1 and 2.
 * Interleaved rounds, medians. Says whether a balancer makes more system calls than
 * another per request, and how much of its CPU is spent outside the kernel
 * (docs/performance.md, "Keep-alive: the same system calls as HAProxy").
 *
 *   node native-bench/syscalls.mjs [--rounds=3] [--duration=5]
 *
 * Needs perf (Debian: apt-get install linux-perf) allowed to trace (root, or
 * kernel.perf_event_paranoid <= 1) and a built dist/. Writes results/syscalls.json.
 */
import { execFileSync, fork, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childrenOf, CLK_TCK, statFields } from './background.mjs';
import { fillTemplate, freePort, median, relayOnlyEnv, sleep } from './local.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const rounds = Number(args.rounds ?? 3);
const duration = Number(args.duration ?? 5);

const READS = ['read', 'readv', 'recvfrom', 'recvmsg'];
const WRITES = ['write', 'writev', 'sendto', 'sendmsg'];
const WAITS = ['epoll_wait', 'epoll_pwait'];
const EVENTS = ['context-switches', 'raw_syscalls:sys_enter', ...[...READS, ...WRITES, ...WAITS, 'epoll_ctl'].map((s) => `syscalls:sys_enter_${s}`)];

const ROWS = [
  { id: 'floor', label: 'bare-handle Node relay', start: (port, ups) => startFloor(port, ups) },
  { id: 'tether', label: 'tether', start: (port, ups) => startTether(port, ups, 1) },
  { id: 'tether-w2', label: 'tether, 2 workers', start: (port, ups) => startTether(port, ups, 2) },
  { id: 'haproxy-1', label: 'HAProxy nbthread 1', start: (port, ups, dir) => startHaproxy(port, ups, dir, 1) },
  { id: 'haproxy-2', label: 'HAProxy nbthread 2', start: (port, ups, dir) => startHaproxy(port, ups, dir, 2) },
];

function startTether(port, ups, workers) {
  const env = relayOnlyEnv({
    TETHER_LISTEN: `127.0.0.1:${port}`,
    TETHER_UPSTREAMS: ups.map((p, i) => `up${i + 1}=127.0.0.1:${p}`).join(','),
    TETHER_MODE: 'tcp',
    TETHER_WORKERS: String(workers),
  });
  return spawn(process.execPath, [join(here, '..', 'dist', 'cli.js')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** peers/handle-relay.mjs: Node's floor (every connection to the first upstream, as source hashing sends wrk's). */
function startFloor(port, ups) {
  return spawn(process.execPath, [join(here, 'peers', 'handle-relay.mjs'), String(port), String(ups[0])], { stdio: ['ignore', 'ignore', 'inherit'] });
}

function startHaproxy(port, ups, dir, threads) {
  const fields = { THREADS: String(threads), MAXCONN: '4096', LISTEN: `127.0.0.1:${port}` };
  ups.forEach((p, i) => (fields[`UP${i + 1}`] = `127.0.0.1:${p}`));
  const file = join(dir, `haproxy-${threads}.cfg`);
  writeFileSync(file, fillTemplate('haproxy.cfg', fields));
  return spawn('haproxy', ['-f', file, '-db'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Whether a connection to the port is accepted. */
function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** User and system CPU seconds of each process so far. */
function cpuTimes(pids) {
  return pids.map((pid) => {
    try {
      const f = statFields(pid);
      return { user: Number(f[11]) / CLK_TCK, system: Number(f[12]) / CLK_TCK };
    } catch {
      return { user: 0, system: 0 };
    }
  });
}

function wrk(port, seconds) {
  const out = execFileSync('wrk', ['-t1', '-c50', `-d${seconds}s`, `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  return Number(/(\d+) requests in/.exec(out)[1]);
}

async function measure(row, ups, dir) {
  const port = await freePort();
  const child = row.start(port, ups, dir);
  try {
    for (let i = 0; i < 100 && !(await accepts(port)); i++) await sleep(50);
    await sleep(row.id === 'tether-w2' ? 1500 : 300);
    const pids = [child.pid, ...childrenOf(child.pid)];
    wrk(port, 1);
    const before = cpuTimes(pids);
    const requests = wrk(port, duration);
    const after = cpuTimes(pids);
    const user = after.reduce((s, t, i) => s + t.user - before[i].user, 0);
    const system = after.reduce((s, t, i) => s + t.system - before[i].system, 0);

    const perf = spawn('perf', ['stat', '-x,', '-e', EVENTS.join(','), '-p', pids.join(','), '--', 'sleep', String(duration)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let text = '';
    perf.stderr.on('data', (d) => (text += d));
    const traced = wrk(port, duration);
    await new Promise((resolve) => perf.on('close', resolve));
    const counts = {};
    for (const line of text.trim().split('\n')) {
      const [value, , event] = line.split(',');
      counts[event.replace('syscalls:sys_enter_', '')] = Number(value);
    }
    const per = (names) => names.reduce((s, n) => s + (counts[n] ?? 0), 0) / traced;
    return {
      rps: requests / duration,
      userUs: (user / requests) * 1e6,
      systemUs: (system / requests) * 1e6,
      syscalls: per(['raw_syscalls:sys_enter']),
      reads: per(READS),
      writes: per(WRITES),
      waits: per(WAITS),
      epollCtl: per(['epoll_ctl']),
      switches: per(['context-switches']),
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
  }
}


async function main() {
  if (spawnSync('perf', ['--version']).status !== 0) throw new Error('perf is not installed (apt-get install linux-perf)');
  const dir = mkdtempSync(join(os.tmpdir(), 'tether-syscalls-'));
  const upstream = fork(join(here, 'peers', 'upstream.mjs'), ['--http=3'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ups = await new Promise((resolve) => upstream.on('message', (m) => m.type === 'ready' && resolve(m.http)));
  const runs = Object.fromEntries(ROWS.map((r) => [r.id, []]));
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const row of ROWS) {
        const r = await measure(row, ups, dir);
        runs[row.id].push(r);
        process.stderr.write(
          `  round ${round}/${rounds} ${row.label}: ${Math.round(r.rps)} req/s, ${(r.userUs + r.systemUs).toFixed(1)} µs/req ` +
            `(user ${r.userUs.toFixed(1)}), ${r.syscalls.toFixed(2)} system calls and ${r.switches.toFixed(3)} switches per request\n`,
        );
      }
    }
  } finally {
    upstream.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const keys = ['rps', 'userUs', 'systemUs', 'syscalls', 'reads', 'writes', 'waits', 'epollCtl', 'switches'];
  const medians = Object.fromEntries(ROWS.map((r) => [r.id, Object.fromEntries(keys.map((k) => [k, median(runs[r.id].map((x) => x[k]))]))]));
  const out = join(here, 'results', 'syscalls.json');
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length, node: process.version, rounds, duration, medians, runs }, null, 2)}\n`);
  const f = (v, d = 2) => v.toFixed(d);
  const lines = [
    `Keep-alive, tcp mode, wrk -t1 -c50, ${rounds} rounds of ${duration} s, medians; per request:`,
    '',
    '| balancer | req/s | CPU µs | of it user µs | user share | system calls | reads | writes | epoll waits | epoll_ctl | context switches |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...ROWS.map((r) => {
      const m = medians[r.id];
      const cpu = m.userUs + m.systemUs;
      return `| ${r.label} | ${Math.round(m.rps).toLocaleString('en-US')} | ${f(cpu, 1)} | ${f(m.userUs, 1)} | ${Math.round((m.userUs / cpu) * 100)}% | ${f(m.syscalls)} | ${f(m.reads)} | ${f(m.writes)} | ${f(m.waits)} | ${f(m.epollCtl, 3)} | ${f(m.switches, 3)} |`;
    }),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stderr.write(`syscalls: wrote ${out}\n`);
}

await main();
