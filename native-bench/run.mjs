#!/usr/bin/env node
/**
 * `npm run bench`: tether side by side with a direct connection, a naive Node pipe
 * proxy, HAProxy and nginx (stream), on four workloads:
 *
 *   bulk      1 stream, then 4 at once, MB/s (iperf3 [-P 4], or Node writers into a sink)
 *   http      small keep-alive requests     (wrk -t1 -c50 --latency, or a Node loop)
 *   connrate  new connections per second    (wrk -H 'Connection: close', or a Node loop)
 *   ws        WebSocket echo round trips, p50/p99, 1 client then 200 clients
 *             (peers/loadgen.mjs with the ws client, echo servers in upstream.mjs)
 *   memory    RSS per idle proxied connection (5,000 connections, /proc/PID/status)
 *   quiet     an instance with no traffic: how often its threads wake, and its CPU
 *             (only when named: --workloads=quiet)
 *   http-affinity  requests keyed by an x-session header over 1,000 sessions,
 *             keep-alive and then Connection: close, through tether's http mode,
 *             HAProxy mode http (hash, stick table) and nginx http, with affinity
 *             checked after every run (http-affinity.mjs: its rows, peer settings,
 *             checks and table)
 *   http-memory  RSS per idle keep-alive client connection in http mode, each
 *             having made one request (http-idle-memory.mjs)
 *   sni-affinity  new connections each sending a TLS ClientHello, routed by its
 *             server name (tether TETHER_KEY=sni, HAProxy req.ssl_sni, nginx
 *             ssl_preread) and by source address, CPU per connection
 *             (sni-affinity.mjs)
 *
 * Every balancer gets one core's worth (HAProxy nbthread 1, nginx worker_processes 1,
 * Node is single-threaded); upstreams and load generators run in processes of their
 * own. Each measurement starts a fresh balancer; rounds interleave the balancers
 * (A B C D, A B C D, ...) and the tables report medians.
 *
 *   node native-bench/run.mjs [--quick] [--only=direct,tether,...] [--rounds=N]
 *        [--duration=S] [--idle=N] [--ws-clients=N] [--peer-threads=N] [--bulk=iperf3|node]
 *        [--http=wrk|node] [--no-hash-quality] [--no-store-latency] [--keep-tmp]
 *        [--balancer-cpus=LIST --load-cpus=LIST --upstream-cpus=LIST]
 *        [--upstream-procs=N] [--wrk-threads=N] [--out=NAME]
 *
 * Writes native-bench/results/latest.json, latest.md and latest.svg (chart.mjs; --out=NAME:
 * NAME.json, NAME.md, NAME.svg),
 * then runs tether's own scenarios (hash-quality.mjs, store-latency.mjs, lookup.mjs,
 * ring-update.mjs, ring-rebuild.mjs, scrape-stall.mjs) and appends their tables. `--workloads=none` runs only the
 * scenarios. Linux only (/proc).
 * README.md next to this file says how to read the numbers.
 */
import { childrenOf, CLK_TCK, cpuOf, cpuSnapshot, otherCpuPct, statFields, wakesOf } from './background.mjs';
import { fork, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderChart } from './chart.mjs';
import { fillTemplate, median, relayOnlyEnv } from './local.mjs';
import { BALANCER_LABELS as LABELS, BALANCER_ORDER, fmt, fmtRatio } from './format.mjs';
import { createHttpAffinity } from './http-affinity.mjs';
import { createHttpIdleMemory } from './http-idle-memory.mjs';
import { createSniAffinity } from './sni-affinity.mjs';
// The Node builds the tests install (npm run test:node) are what --node is usually given.
import { versionOf } from '../test/setup/node-builds.mjs';
import {
  evaluateHttpTargets,
  evaluateTargets,
  evaluateWorkerTargets,
  httpTargetsMarkdown,
  targetsMarkdown,
  workerTargetsMarkdown,
} from './targets.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const peersDir = join(here, 'peers');
const resultsDir = join(here, 'results');

// ---- options ----------------------------------------------------------------

const WORKLOAD_ORDER = ['bulk', 'http', 'connrate', 'ws', 'memory', 'quiet', 'http-affinity', 'http-memory', 'sni-affinity'];
/** Run only when named: each of its measurements waits out a balancer's start-up (~20 s). */
const NAMED_ONLY = new Set(['quiet']);
/** tether's own scenarios, each a script of its own, run after the side-by-side. */
const SCENARIOS = {
  'hash-quality': { file: 'hash-quality.mjs', title: 'Hash quality', timeoutMs: 300_000, quick: false },
  'store-latency': { file: 'store-latency.mjs', title: 'Store latency', timeoutMs: 300_000, quick: false },
  lookup: { file: 'lookup.mjs', title: 'Lookup speed', timeoutMs: 300_000 },
  update: { file: 'ring-update.mjs', title: 'One-upstream change in the build thread', timeoutMs: 300_000 },
  rebuild: { file: 'ring-rebuild.mjs', title: 'Ring rebuilds: inline against worker threads', timeoutMs: 900_000 },
  stall: { file: 'scrape-stall.mjs', title: 'A whole GET /metrics against a relayed echo', timeoutMs: 600_000 },
};
const SCENARIO_ORDER = Object.keys(SCENARIOS);

const HELP = `Usage: node native-bench/run.mjs [options]      (npm run bench builds first)

  --quick              1 round, 2 s per measurement, 1,000 idle connections
  --only=LIST          balancers to run, from: ${BALANCER_ORDER.join(', ')}
  --workloads=LIST     workloads to run, from: ${WORKLOAD_ORDER.join(', ')}
                       (quiet only when named); none = only the scenarios below
  --scenarios=LIST     tether's own scenarios, from: ${SCENARIO_ORDER.join(', ')}
                       (default all; --quick passes --quick to lookup, update, rebuild
                       and stall);
                       none = only the side-by-side
  --rounds=N           interleaved rounds (default 3)
  --duration=S         seconds per measurement, whole seconds (default 3)
  --idle=N             idle connections for the memory and http-memory workloads
                       (default 5000)
  --ws-clients=N       WebSocket clients of the ws workload's second phase (default
                       200; the first phase is always 1 client)
  --peer-threads=N     HAProxy nbthread / nginx worker_processes (default 1: one
                       core's worth each, like single-threaded Node); with 2 or more
                       the row "tether, 2 workers" (TETHER_WORKERS=2) joins tether's
                       (every core: compare it with the peers' threads)
  --node=PATH          add the rows "tether, Node V" (and with --peer-threads=2 or more,
                       "tether, 2 workers, Node V") to the side-by-side workloads:
                       tether run by another Node binary, e.g. a Node 22.12+ whose
                       workers each listen on a socket of their own (reusePort);
                       everything else stays on this Node
  --baseline=DIR       add the row "tether, baseline build": the dist/cli.js of another
                       checkout (e.g. a git worktree of an older commit, built), run
                       as tether is, in the same rounds: a before/after in one run
  --balancer-cpus=LIST pin every balancer (all its processes and threads) to these
                       CPUs (taskset -c syntax: 0-1, or 0,2); with --load-cpus and
                       --upstream-cpus, on a host with idle cores each side gets cores
                       of its own and the balancers stop sharing theirs with the load
  --load-cpus=LIST     pin the load generators and this runner
  --upstream-cpus=LIST pin the upstreams
  --upstream-procs=N   run the upstreams in N processes (default 1) that accept on
                       the same listening sockets: source-hash routing sends all of
                       wrk's connections to one server, and one Node process answers
                       ~120k small requests a second, less than 2 cores of a balancer relay
  --wrk-threads=N      wrk -tN for the http and connrate workloads (default 1); with
                       idle cores one wrk thread is what runs out first
  --bulk=iperf3|node   bulk tool (default iperf3 when installed)
  --http=wrk|node      keep-alive HTTP tool (default wrk when installed)
  --connrate=wrk|node  new-connection tool (default wrk when installed)
  --no-hash-quality    skip native-bench/hash-quality.mjs at the end
  --no-store-latency   skip native-bench/store-latency.mjs (memory vs Redis store) at the end
  --keep-tmp           keep the temp directory (configs, logs) after a good run
  --out=NAME           write results/NAME.json, NAME.md, NAME.svg (default latest), e.g.
                       to keep a one-workload run apart from the full one
`;

function parseArgs(argv) {
  const o = {
    quick: false,
    only: null,
    workloads: null,
    rounds: 3,
    duration: 3,
    warmup: 1,
    idle: 5000,
    wsClients: 200,
    peerThreads: 1,
    balancerCpus: null,
    loadCpus: null,
    upstreamCpus: null,
    upstreamProcs: 1,
    wrkThreads: 1,
    bulk: null,
    http: null,
    connrate: null,
    hashQuality: true,
    storeLatency: true,
    scenarios: [...SCENARIO_ORDER],
    keepTmp: false,
    out: 'latest',
  };
  const set = {};
  for (const arg of argv) {
    const [k, v] = arg.split(/=(.*)/s);
    const int = (min) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) fail(`${k} must be an integer >= ${min}, got "${v}"`);
      return n;
    };
    const list = (allowed) => {
      const items = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      const bad = items.filter((s) => !allowed.includes(s));
      if (items.length === 0 || bad.length) fail(`${k}: "${bad.join(',') || v}" is not in ${allowed.join(',')}`);
      return items;
    };
    switch (k) {
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        process.exit(0);
        break;
      case '--quick': o.quick = true; break;
      case '--only': o.only = list(BALANCER_ORDER); break;
      case '--workloads': o.workloads = v === 'none' ? [] : list(WORKLOAD_ORDER); break;
      case '--scenarios': o.scenarios = v === 'none' ? [] : list(SCENARIO_ORDER); break;
      case '--rounds': o.rounds = set.rounds = int(1); break;
      case '--duration': o.duration = set.duration = int(1); break;
      case '--idle': o.idle = set.idle = int(1); break;
      case '--ws-clients': o.wsClients = int(1); break;
      case '--peer-threads': o.peerThreads = int(1); break;
      case '--balancer-cpus': o.balancerCpus = cpuList(k, v); break;
      case '--load-cpus': o.loadCpus = cpuList(k, v); break;
      case '--upstream-cpus': o.upstreamCpus = cpuList(k, v); break;
      case '--upstream-procs': o.upstreamProcs = int(1); break;
      case '--wrk-threads': o.wrkThreads = int(1); break;
      case '--node': {
        const node = resolve(v ?? '');
        try {
          o.node = { path: node, version: versionOf(node) };
        } catch {
          fail(`--node: ${node} does not run as Node`);
        }
        break;
      }
      case '--baseline': {
        const cli = join(resolve(v ?? ''), 'dist', 'cli.js');
        if (!v || !existsSync(cli)) fail(`--baseline: ${cli} is missing (a checkout, built)`);
        o.baseline = cli;
        break;
      }
      case '--bulk': o.bulk = list(['iperf3', 'node'])[0]; break;
      case '--http': o.http = list(['wrk', 'node'])[0]; break;
      case '--connrate': o.connrate = list(['wrk', 'node'])[0]; break;
      case '--no-hash-quality': o.hashQuality = false; break;
      case '--no-store-latency': o.storeLatency = false; break;
      case '--keep-tmp': o.keepTmp = true; break;
      case '--out':
        if (!/^[\w.-]+$/.test(v ?? '')) fail(`--out must be a file name stem, got "${v}"`);
        o.out = v;
        break;
      default: fail(`unknown option ${arg} (--help lists them)`);
    }
  }
  if (!o.hashQuality) o.scenarios = o.scenarios.filter((s) => s !== 'hash-quality');
  if (!o.storeLatency) o.scenarios = o.scenarios.filter((s) => s !== 'store-latency');
  if (o.quick) {
    if (set.rounds === undefined) o.rounds = 1;
    if (set.duration === undefined) o.duration = 2;
    if (set.idle === undefined) o.idle = 1000;
  }
  return o;
}

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

/** A CPU list's ranges (0-3,5 is 0 to 3 and 5 to 5). */
function cpuRanges(list) {
  return list.split(',').map((range) => {
    const [from, to = from] = range.split('-').map(Number);
    return { range, from, to };
  });
}

/** A CPU list as taskset -c takes it (0-3 or 0,2,4-5), every CPU one this host has. */
function cpuList(option, value) {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(value ?? '')) fail(`${option} must be a CPU list such as 0-1 or 0,2, got "${value}"`);
  const cpus = os.cpus().length;
  for (const { range, from, to } of cpuRanges(value)) {
    if (from > to || to >= cpus) fail(`${option}: ${range} is not among this host's CPUs 0-${cpus - 1}`);
  }
  return value;
}

const opts = parseArgs(process.argv.slice(2));
const log = (line) => process.stderr.write(`${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();

if (process.platform !== 'linux') fail('the benchmark reads /proc for memory and readiness: Linux only');

const pinning = opts.balancerCpus !== null || opts.loadCpus !== null || opts.upstreamCpus !== null;
if (pinning) {
  if (spawnSync('taskset', ['-V'], { encoding: 'utf8', timeout: 5000 }).status !== 0) fail('--*-cpus pin processes with taskset (util-linux), which is not installed');
  // Whatever this runner starts unpinned (wrk, iperf3 clients, the Node load generator) inherits the load CPUs.
  if (opts.loadCpus !== null) {
    const r = spawnSync('taskset', ['-a', '-p', '-c', opts.loadCpus, String(process.pid)], { encoding: 'utf8', timeout: 5000 });
    if (r.status !== 0) fail(`--load-cpus: taskset could not pin this runner: ${r.stderr.trim()}`);
  }
}

/** `cmd args` as spawned: behind `taskset -c cpus` where the command's side is pinned. */
function pinnedCommand(cpus, cmd, args) {
  return cpus === null ? [cmd, args] : ['taskset', ['-c', cpus, cmd, ...args]];
}

/** The CPUs a process may run on (/proc: Cpus_allowed_list), or null once it is gone. */
function allowedCpus(pid) {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** A CPU list's CPUs, in order, one by one (0-2,5 is 0,1,2,5). */
function expandCpus(list) {
  return cpuRanges(list).flatMap(({ from, to }) => Array.from({ length: to - from + 1 }, (_, i) => from + i)).join(',');
}

/** Throws unless each of `pids` (still running) may run on exactly the CPUs `cpus` lists. */
function checkPinned(pids, cpus, what) {
  if (cpus === null) return;
  for (const pid of pids) {
    const allowed = allowedCpus(pid);
    if (allowed !== null && expandCpus(allowed) !== expandCpus(cpus)) throw new Error(`${what} (pid ${pid}) runs on CPUs ${allowed}, not ${cpus}`);
  }
}

// ---- child processes: every one tracked by pid, every one stopped ------------

/** pid -> { name, child?, check? } ; `check` guards pids we did not spawn (nginx workers). */
const tracked = new Map();
let tmpDir = null;
let cleaningUp = false;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function track(pid, name, extra = {}) {
  tracked.set(pid, { name, ...extra });
}

function trackChild(child, name) {
  if (!child.pid) return;
  track(child.pid, name, { child });
  child.once('exit', () => tracked.delete(child.pid));
}

/** Synchronous last resort (process 'exit'): SIGKILL whatever is left. */
function killAllNow() {
  for (const [pid, entry] of tracked) {
    if (entry.check && !entry.check()) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  tracked.clear();
}

/** SIGTERM, wait up to graceMs, then SIGKILL; `extra` pids (workers) get SIGKILL if still there. */
async function stopPid(pid, { graceMs = 3000, extra = [] } = {}) {
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const until = Date.now() + graceMs;
    while (alive(pid) && Date.now() < until) await sleep(25);
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      const hard = Date.now() + 2000;
      while (alive(pid) && Date.now() < hard) await sleep(25);
    }
  }
  tracked.delete(pid);
  for (const w of extra) {
    const entry = tracked.get(w);
    if (entry && (!entry.check || entry.check()) && alive(w)) {
      try {
        process.kill(w, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    tracked.delete(w);
  }
}

async function cleanup() {
  if (cleaningUp) return;
  cleaningUp = true;
  const pids = [...tracked.keys()];
  await Promise.all(pids.map((pid) => stopPid(pid, { graceMs: 1500 })));
  killAllNow();
}

process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`\nbench: ${sig}: stopping every process it started`);
    void cleanup().finally(() => {
      if (tmpDir) log(`bench: logs and configs kept in ${tmpDir}`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  });
}
process.on('uncaughtException', (err) => abort(err));
process.on('unhandledRejection', (err) => abort(err));

function abort(err) {
  log(`bench: failed: ${err?.stack ?? err}`);
  void cleanup().finally(() => {
    if (tmpDir) log(`bench: logs and configs kept in ${tmpDir}`);
    process.exit(1);
  });
}

/** Run a command to completion with a timeout; its pid is tracked while it runs. */
function runCapture(cmd, args, { timeoutMs, env } = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    trackChild(child, cmd);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      void stopPid(child.pid, { graceMs: 1000 });
    }, timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolvePromise({ code: -1, stdout, stderr: stderr + String(err), timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 128 : -1), stdout, stderr, timedOut });
    });
  });
}

/** A forked Node helper (upstreams, load generator) answering over IPC; `cpus`: pinned there. */
async function forkHelper(script, args, name, cpus = null) {
  // Behind taskset, which execs Node in its place (the same pid, the IPC channel inherited).
  const pin = cpus === null ? {} : { execPath: 'taskset', execArgv: ['-c', cpus, process.execPath] };
  const child = fork(join(peersDir, script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...pin });
  trackChild(child, name);
  const pending = new Map();
  let nextId = 1;
  let ready;
  const readyP = new Promise((res, rej) => {
    ready = { res, rej };
  });
  child.on('message', (msg) => {
    if (msg?.type === 'ready') ready.res(msg);
    else if (msg?.type) {
      const id = msg.type === 'result' ? msg.id : msg.type;
      const p = pending.get(id);
      if (p) {
        pending.delete(id);
        p(msg);
      }
    }
  });
  child.on('exit', (code, signal) => {
    const err = new Error(`${name} exited (${signal ?? code})`);
    ready.rej(err);
    for (const p of pending.values()) p({ ok: false, error: err.message });
    pending.clear();
  });
  const info = await withTimeout(readyP, 10_000, `${name} did not start`);
  return {
    info,
    pid: child.pid,
    /** Send a load-generator command; rejects after timeoutMs. */
    call(cmd, body, timeoutMs) {
      const id = nextId++;
      const p = new Promise((res) => pending.set(id, res));
      child.send({ cmd, id, ...body });
      return withTimeout(p, timeoutMs, `${name}: ${cmd} timed out`).then(
        (msg) => {
          if (!msg.ok) throw new Error(`${name}: ${cmd}: ${msg.error}`);
          return msg.result;
        },
        (err) => {
          pending.delete(id);
          throw err;
        },
      );
    },
    stats() {
      return this.ask('stats');
    },
    /** A question by message type, answered by a message of the same type. */
    ask(type) {
      const p = new Promise((res) => pending.set(type, res));
      child.send({ type });
      return withTimeout(p, 5000, `${name}: ${type} timed out`);
    },
    stop: () => stopPid(child.pid, { graceMs: 2000 }),
  };
}

/**
 * The upstreams: upstream.mjs with the servers `counts` asks for (e.g. { http: 3 }), in
 * --upstream-procs processes that accept on the same listening sockets (on
 * --upstream-cpus); `pids`: all of them, for CPU shares.
 */
async function forkUpstreams(counts) {
  const args = [...Object.entries(counts).map(([kind, n]) => `--${kind}=${n}`), `--procs=${opts.upstreamProcs}`];
  const helper = await forkHelper('upstream.mjs', args, 'upstreams', opts.upstreamCpus);
  return { ...helper, pids: helper.info.pids };
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- ports and readiness ------------------------------------------------------

/**
 * A free port, checked by binding it. Candidates come from below the kernel's
 * ephemeral range: a port taken from that range (what binding port 0 returns) can
 * be grabbed by one of the tens of thousands of outgoing connections the
 * workloads make between our check and the balancer's bind. Falls back to port 0.
 */
const usedPorts = new Set();
const ephemeralLow = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32768;
  }
})();

function tryBind(port) {
  return new Promise((res) => {
    const srv = net.createServer();
    srv.once('error', () => res(0));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const got = srv.address().port;
      srv.close(() => res(got));
    });
  });
}

async function freePort() {
  const low = 10_000;
  const high = Math.min(ephemeralLow, 65_536);
  for (let i = 0; high - low > 1000 && i < 100; i++) {
    const cand = low + Math.floor(Math.random() * (high - low));
    if (usedPorts.has(cand)) continue;
    if ((await tryBind(cand)) === cand) {
      usedPorts.add(cand);
      return cand;
    }
  }
  for (let i = 0; i < 20; i++) {
    const port = await tryBind(0);
    if (port && !usedPorts.has(port)) {
      usedPorts.add(port);
      return port;
    }
  }
  throw new Error('no free port');
}

/** Is something LISTENing on 127.0.0.1:port (or 0.0.0.0:port)? From /proc/net/tcp. */
function listening(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  try {
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && (f[1] === `0100007F:${hex}` || f[1] === `00000000:${hex}`)) return true;
    }
  } catch {
    /* fall through */
  }
  return false;
}

/**
 * Soft RLIMIT_NOFILE of this process, which every child inherits (HAProxy, nginx,
 * iperf3 and the Node helpers alike). Node raises its soft limit to the hard one at
 * start-up, so this is the hard limit (ulimit -Hn): 5,000 idle connections need
 * about 10,200 in the balancer, 5,000 in the load generator and in the upstreams.
 */
const nofile = (() => {
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : 65_536;
  } catch {
    return 1024;
  }
})();
/** Connections a balancer may hold: each proxied one takes two descriptors. */
const MAXCONN = Math.max(100, Math.min(20_000, Math.floor((nofile - 100) / 2)));

// ---- background load: CPU used during a run by processes that are not ours -------

/** A run during which other processes took this much of a core is flagged. */
const BUSY_PCT = 25;

/**
 * Before a measurement, wait (at most 3 s, and 60 s over the whole run) for a
 * quarter-second in which other processes use less than BUSY_PCT of a core: on a
 * shared machine this skips the worst bursts of someone else's work.
 */
let quietBudgetMs = 60_000;
async function waitQuiet() {
  const until = Date.now() + Math.min(3000, quietBudgetMs);
  const t0 = Date.now();
  for (;;) {
    const a = cpuSnapshot();
    await sleep(250);
    if (otherCpuPct(a, cpuSnapshot()) < BUSY_PCT || Date.now() >= until) break;
  }
  quietBudgetMs = Math.max(0, quietBudgetMs - (Date.now() - t0 - 250));
}


function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

function tail(file, lines = 8) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// ---- peers --------------------------------------------------------------------

function probe(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) return null;
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

function detectPeers() {
  const peers = {};
  const h = probe('haproxy', ['-v']);
  peers.haproxy = h
    ? { ok: true, version: /HA-?Proxy version (\S+)/i.exec(h)?.[1] ?? h.split('\n')[0] }
    : { ok: false, packages: ['haproxy'], why: 'haproxy not found' };

  const n = probe('nginx', ['-V']);
  if (!n) {
    peers.nginx = { ok: false, packages: ['nginx', 'libnginx-mod-stream'], why: 'nginx not found' };
  } else {
    const version = /nginx\/(\S+)/.exec(n)?.[1] ?? 'unknown';
    const dynamic = /--with-stream=dynamic/.test(n);
    const statik = /--with-stream(\s|$)/.test(n);
    const modulesPath = /--modules-path=(\S+)/.exec(n)?.[1];
    let loadModule = '';
    let ok = statik;
    if (!statik) {
      const candidates = [
        process.env.NGINX_STREAM_MODULE, // device-kit.sh: the module carried beside nginx
        modulesPath && join(modulesPath, 'ngx_stream_module.so'),
        '/usr/lib/nginx/modules/ngx_stream_module.so',
        '/usr/lib64/nginx/modules/ngx_stream_module.so',
        '/usr/share/nginx/modules/ngx_stream_module.so',
      ].filter(Boolean);
      const so = candidates.find((p) => existsSync(p));
      if (so) {
        ok = true;
        loadModule = `load_module ${so};`;
      }
    }
    const [maj, min, pat] = version.split('.').map(Number);
    const hasE = maj > 1 || (maj === 1 && (min > 19 || (min === 19 && pat >= 5)));
    peers.nginx = ok
      ? { ok, version, loadModule, stream: statik ? 'static' : 'dynamic', hasE }
      : {
          ok: false,
          version,
          packages: ['libnginx-mod-stream'],
          why: `nginx ${version} has no stream module (${dynamic ? 'dynamic module file not found' : 'not built with --with-stream'})`,
        };
  }

  const w = probe('wrk', ['-v']);
  peers.wrk = w
    ? { ok: true, version: /wrk (\S+)/.exec(w)?.[1] ?? 'unknown' }
    : { ok: false, packages: ['wrk'], why: 'wrk not found' };

  const i = probe('iperf3', ['--version']);
  peers.iperf3 = i
    ? { ok: true, version: /iperf (\S+)/.exec(i)?.[1] ?? 'unknown' }
    : { ok: false, packages: ['iperf3'], why: 'iperf3 not found' };
  return peers;
}

const peers = detectPeers();
const missing = Object.entries(peers).filter(([, p]) => !p.ok);
const aptCommand = missing.length
  ? `${process.getuid?.() === 0 ? '' : 'sudo '}apt-get install -y ${[...new Set(missing.flatMap(([, p]) => p.packages))].join(' ')}`
  : null;

const tools = {
  bulk: opts.bulk ?? (peers.iperf3.ok ? 'iperf3' : 'node'),
  http: opts.http ?? (peers.wrk.ok ? 'wrk' : 'node'),
  connrate: opts.connrate ?? (peers.wrk.ok ? 'wrk' : 'node'),
};
if (tools.bulk === 'iperf3' && !peers.iperf3.ok) fail('--bulk=iperf3 but iperf3 is not installed');
if (tools.http === 'wrk' && !peers.wrk.ok) fail('--http=wrk but wrk is not installed');
if (tools.connrate === 'wrk' && !peers.wrk.ok) fail('--connrate=wrk but wrk is not installed');

const cliPath = join(root, 'dist', 'cli.js');
if (!existsSync(cliPath)) fail(`${cliPath} is missing: build first (npx tsc -p tsconfig.json), or use npm run bench`);
// Whether a --node Node's workers listen with reusePort: as tether decides it.
const { nodeHasReusePort } = await import(join(root, 'dist', 'net', 'reuse-port.js'));

const available = {
  direct: true,
  tether: true,
  'tether-w2': true,
  'tether-base': opts.baseline !== undefined,
  'tether-node': opts.node !== undefined,
  'tether-w2-node': opts.node !== undefined,
  naive: true,
  haproxy: peers.haproxy.ok,
  nginx: peers.nginx.ok,
};
// tether with 2 workers stands beside peers given 2 threads or more (or when asked for).
const wanted =
  opts.only ??
  BALANCER_ORDER.filter((b) => (workersOf(b) === 1 || opts.peerThreads >= 2) && (b !== 'tether-base' || opts.baseline) && (!b.endsWith('-node') || opts.node));
if (opts.node) {
  LABELS['tether-node'] = `tether, Node ${opts.node.version}`;
  LABELS['tether-w2-node'] = `tether, 2 workers, Node ${opts.node.version}`;
}
const balancers = BALANCER_ORDER.filter((b) => wanted.includes(b) && available[b]);
const skipped = wanted.filter((b) => !available[b]);
const workloads = WORKLOAD_ORDER.filter((w) => (opts.workloads ? opts.workloads.includes(w) : !NAMED_ONLY.has(w)));
// Each idle connection costs two descriptors in the balancer (and one each in the
// load generator and the upstreams): stay under the inherited limit.
const idleWanted = opts.idle;
if (opts.idle > MAXCONN - 100) opts.idle = Math.max(10, MAXCONN - 100);

// ---- balancers under test --------------------------------------------------------

/** How many relaying processes a balancer row of tether runs (TETHER_WORKERS). */
function workersOf(balancer) {
  return balancer === 'tether-w2' || balancer === 'tether-w2-node' ? 2 : 1;
}

const SOURCES = Array.from({ length: 200 }, (_, i) => `127.0.0.${i + 2}`);
let instance = 0;

/**
 * Launch one balancer listening on `port` in front of `ups` ("host:port" x3).
 * `spec` (from a workload's rows) adds tether environment (`env`, an admin listener
 * on `adminPort`), names another peer config template (`template`, `fields`) or
 * another naive proxy (`script`).
 */
function launch(name, port, ups, dir, spec = {}) {
  const logFile = join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const stdio = ['ignore', fd, fd];
  const listen = `127.0.0.1:${port}`;
  let child;
  try {
    switch (name) {
      case 'tether':
      case 'tether-base':
      case 'tether-w2':
      case 'tether-node':
      case 'tether-w2-node': {
        const env = relayOnlyEnv({
          TETHER_LISTEN: listen,
          TETHER_UPSTREAMS: ups.map((a, i) => `up${i + 1}=${a}`).join(','),
          TETHER_DRAIN_TIMEOUT_MS: '200',
          // A plain TCP relay for every side-by-side workload (a WebSocket upgrade
          // passes through it like any bytes); http-affinity's rows set http.
          TETHER_MODE: 'tcp',
          TETHER_WORKERS: String(workersOf(name)),
          ...spec.env,
        });
        if (spec.adminPort) env.TETHER_ADMIN = `127.0.0.1:${spec.adminPort}`;
        const node = name.endsWith('-node') ? opts.node.path : process.execPath;
        child = spawn(...pinnedCommand(opts.balancerCpus, node, [name === 'tether-base' ? opts.baseline : cliPath]), { stdio, env });
        break;
      }
      case 'naive':
        child = spawn(...pinnedCommand(opts.balancerCpus, process.execPath, [join(peersDir, spec.script ?? 'naive-proxy.mjs')]), {
          stdio,
          env: { ...process.env, NAIVE_LISTEN: listen, NAIVE_UPSTREAMS: ups.join(',') },
        });
        break;
      case 'haproxy': {
        const cfg = join(dir, 'haproxy.cfg');
        const fields = {
          THREADS: String(opts.peerThreads),
          MAXCONN: String(MAXCONN),
          LISTEN: listen,
          UP1: ups[0],
          UP2: ups[1],
          UP3: ups[2],
          TMP: dir,
          ...spec.fields,
        };
        writeFileSync(cfg, fillTemplate(spec.template ?? 'haproxy.cfg', fields));
        child = spawn(...pinnedCommand(opts.balancerCpus, 'haproxy', ['-f', cfg, '-db']), { stdio, cwd: dir });
        break;
      }
      case 'nginx': {
        const cfg = join(dir, 'nginx.conf');
        writeFileSync(
          cfg,
          fillTemplate(spec.template ?? 'nginx.conf', {
            LOAD_MODULE: peers.nginx.loadModule,
            THREADS: String(opts.peerThreads),
            NOFILE: String(nofile),
            WORKER_CONNECTIONS: String(Math.min(2 * MAXCONN + 10, nofile - 50)),
            TMP: dir,
            LISTEN: listen,
            UP1: ups[0],
            UP2: ups[1],
            UP3: ups[2],
            ...spec.fields,
          }),
        );
        const args = ['-p', `${dir}/`, '-c', cfg, '-g', 'daemon off;'];
        if (peers.nginx.hasE) args.unshift('-e', join(dir, 'nginx-error.log'));
        child = spawn(...pinnedCommand(opts.balancerCpus, 'nginx', args), { stdio, cwd: dir });
        break;
      }
      default:
        throw new Error(`unknown balancer ${name}`);
    }
  } finally {
    closeSync(fd);
  }
  trackChild(child, name);
  return { child, logFile };
}

/**
 * Start a fresh instance and wait until it listens (nginx: and its workers exist).
 * Returns { port, pids() (the processes whose RSS counts), stop(), dir, adminPort }.
 */
async function startBalancer(name, ups, spec = {}) {
  if (name === 'direct') {
    const [host, port] = ups[0].split(':');
    return { host, port: Number(port), pids: () => [], stop: async () => {} };
  }
  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const dir = join(tmpDir, `${name}-${++instance}`);
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const adminPort = spec.admin ? await freePort() : 0;
    const { child, logFile } = launch(name, port, ups, dir, { ...spec, adminPort });
    let exited = null;
    child.once('exit', (code, signal) => (exited = signal ?? code));
    child.once('error', (err) => (exited = String(err)));
    const deadline = Date.now() + 10_000;
    let workers = [];
    // Processes that relay besides the one started: nginx's workers, tether's.
    // tether with workers: two and the standby that replaces one that dies.
    const want = name === 'nginx' ? opts.peerThreads : workersOf(name) > 1 ? workersOf(name) + 1 : 0;
    while (exited === null && Date.now() < deadline) {
      if (listening(port) && (!adminPort || listening(adminPort))) {
        if (want > 0) workers = childrenOf(child.pid);
        if (workers.length >= want) break;
      }
      await sleep(25);
    }
    if (exited === null && Date.now() < deadline) {
      const processName = name === 'nginx' ? 'nginx' : 'node';
      for (const w of workers) {
        track(w, `${name} worker`, {
          check: () => {
            try {
              return readFileSync(`/proc/${w}/cmdline`, 'utf8').includes(processName);
            } catch {
              return false;
            }
          },
        });
      }
      // nginx's master only waits; tether's control plane counts with its workers.
      const pids =
        name === 'nginx' ? () => childrenOf(child.pid) : workersOf(name) > 1 ? () => [child.pid, ...childrenOf(child.pid)] : () => [child.pid];
      // The standby starts after the workers: its start-up is not the measurement's.
      if (workersOf(name) > 1) await settled(pids);
      return {
        host: '127.0.0.1',
        port,
        dir,
        adminPort,
        pids,
        stop: () => stopPid(child.pid, { graceMs: 3000, extra: workers }),
      };
    }
    await stopPid(child.pid, { graceMs: 500 });
    const extraLog = name === 'nginx' ? `\n${tail(join(dir, 'nginx-error.log'))}` : '';
    const why = `${tail(logFile)}${extraLog}`.trim();
    lastError = new Error(
      `${name} did not start on port ${port} (${exited === null ? 'timeout' : `exit ${exited}`}): ${why.split('\n').at(-1)}\n${why}`,
    );
    log(`  ${name}: start attempt ${attempt} failed, ${lastError.message.split('\n')[0]}`);
  }
  throw lastError;
}

/** Wait (at most 5 s) until the processes use under 5% of a core between two looks. */
async function settled(pids) {
  const deadline = Date.now() + 5000;
  let before = cpuSeconds(pids());
  while (Date.now() < deadline) {
    await sleep(250);
    const now = cpuSeconds(pids());
    if (now - before < 0.0125) return;
    before = now;
  }
}

// ---- workloads ---------------------------------------------------------------------

let upstreams;
let loadgen;
let iperfPorts = [];

function upstreamsFor(workload) {
  if (workload === 'bulk') {
    if (tools.bulk === 'iperf3') return iperfPorts.map((p) => `127.0.0.1:${p}`);
    return upstreams.info.sink.map((p) => `127.0.0.1:${p}`);
  }
  if (workload === 'http-affinity' || workload === 'http-memory') return upstreams.info.sessionHttp.map((p) => `127.0.0.1:${p}`);
  if (workload === 'sni-affinity') return upstreams.info.sni.map((p) => `127.0.0.1:${p}`);
  if (workload === 'ws') return upstreams.info.ws.map((p) => `127.0.0.1:${p}`);
  return upstreams.info.http.map((p) => `127.0.0.1:${p}`);
}

function parseDuration(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) return null;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2]];
  return Number(m[1]) * scale;
}

/** Streams of the second bulk measurement (iperf3 -P, or the Node writer's streams). */
const BULK_STREAMS = 4;

/** One bulk measurement of `streams` parallel TCP streams: MB/s of them all. */
async function bulkOnce(target, streams) {
  if (tools.bulk === 'iperf3') {
    const args = ['-c', target.host, '-p', String(target.port), '-t', String(opts.duration), '-O', String(opts.warmup)];
    if (streams > 1) args.push('-P', String(streams));
    args.push('-J', '--connect-timeout', '3000');
    const r = await runCapture('iperf3', args, { timeoutMs: (opts.duration + opts.warmup + 15) * 1000 });
    let json;
    try {
      json = JSON.parse(r.stdout);
    } catch {
      throw new Error(`iperf3 gave no JSON (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.slice(0, 300)}`);
    }
    if (json.error) throw new Error(`iperf3: ${json.error}`);
    const bps = json.end?.sum_received?.bits_per_second;
    if (!bps) throw new Error('iperf3: no sum_received in its JSON');
    return { mbPerS: bps / 8 / 1e6, retransmits: json.end?.sum_sent?.retransmits ?? null };
  }
  const durationMs = opts.duration * 1000;
  const warmupMs = opts.warmup * 1000;
  return loadgen.call('bulk', { host: target.host, port: target.port, warmupMs, durationMs, streams }, durationMs + warmupMs + 15_000);
}

/**
 * One stream, then BULK_STREAMS at once, through the same balancer instance. The
 * streams all come from 127.0.0.1, so every balancer sends them to one upstream
 * (iperf3 needs that: a test's streams must reach the server its control
 * connection did).
 */
async function measureBulk(target) {
  const one = await bulkOnce(target, 1);
  const many = await bulkOnce(target, BULK_STREAMS);
  return { mbPerS: one.mbPerS, retransmits: one.retransmits ?? null, mbPerS4: many.mbPerS, retransmits4: many.retransmits ?? null };
}

/**
 * wrk: a warm-up run, then the measured one with --latency. `extra` adds options
 * (headers, a script), `after` goes after the URL (a script's arguments).
 */
async function wrk(target, extra = [], after = []) {
  const url = `http://${target.host}:${target.port}/`;
  const timeoutMs = (opts.duration + 15) * 1000;
  const threads = `-t${opts.wrkThreads}`;
  const warm = await runCapture('wrk', [threads, '-c50', `-d${opts.warmup}s`, ...extra, url, ...after], { timeoutMs });
  if (warm.code !== 0) throw new Error(`wrk warm-up failed (exit ${warm.code}): ${warm.stderr.slice(0, 300)}`);
  const args = [threads, '-c50', `-d${opts.duration}s`, '--latency', '--timeout', '2s', ...extra, url, ...after];
  const r = await runCapture('wrk', args, { timeoutMs });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]);
  if (r.code !== 0 || !rps) throw new Error(`wrk failed (exit ${r.code}): ${(r.stderr || r.stdout).slice(0, 300)}`);
  const p50 = /^\s+50%\s+(\S+)/m.exec(r.stdout)?.[1];
  const p99 = /^\s+99%\s+(\S+)/m.exec(r.stdout)?.[1];
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const errors = (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
  return { rps, p50Ms: parseDuration(p50), p99Ms: parseDuration(p99), errors };
}

async function measureHttp(target) {
  if (tools.http === 'wrk') return wrk(target);
  const durationMs = opts.duration * 1000;
  const warmupMs = opts.warmup * 1000;
  return loadgen.call(
    'http',
    { host: target.host, port: target.port, connections: 50, warmupMs, durationMs },
    durationMs + warmupMs + 15_000,
  );
}

/**
 * The upstream answers `Connection: close` and closes first, so TIME_WAIT lands on
 * server sides and the client's ports do not run out; wrk reconnects at once.
 */
async function measureConnrate(target) {
  if (tools.connrate === 'wrk') {
    const r = await wrk(target, ['-H', 'Connection: close']);
    return { cps: r.rps, p99Ms: r.p99Ms, errors: r.errors };
  }
  const durationMs = opts.duration * 1000;
  const warmupMs = opts.warmup * 1000;
  return loadgen.call(
    'connrate',
    { host: target.host, port: target.port, concurrency: 50, warmupMs, durationMs, sources: SOURCES },
    durationMs + warmupMs + 20_000,
  );
}

/** Bytes in each WebSocket echo message. */
const WS_MESSAGE_BYTES = 64;

/**
 * WebSocket echo round trips through one balancer instance: 1 client, then
 * opts.wsClients at once, from SOURCES (so source-hash balancers spread them over
 * the three upstreams); each phase opens its sockets, warms up, measures, closes.
 */
async function measureWs(target) {
  const durationMs = opts.duration * 1000;
  const warmupMs = opts.warmup * 1000;
  const phase = (clients) =>
    loadgen.call(
      'wsEcho',
      { host: target.host, port: target.port, clients, sources: SOURCES, bytes: WS_MESSAGE_BYTES, warmupMs, durationMs },
      durationMs + warmupMs + 30_000,
    );
  const one = await phase(1);
  // The balancer's CPU per round trip under many clients: what p99 there mostly follows.
  const pids = target.pids();
  const cpu0 = pids.length ? cpuSeconds(pids) : null;
  const many = await phase(opts.wsClients);
  const cpu1 = pids.length ? cpuSeconds(pids) : null;
  return {
    ws1P50Ms: one.p50Ms,
    ws1P99Ms: one.p99Ms,
    wsNP50Ms: many.p50Ms,
    wsNP99Ms: many.p99Ms,
    wsNCpuUsPerRt: cpu0 !== null && many.echoes > 0 ? ((cpu1 - cpu0) * 1e6) / many.echoes : null,
    ws1PerS: one.roundTripsPerS,
    wsNPerS: many.roundTripsPerS,
    wsClients: opts.wsClients,
    errors: one.errors + many.errors,
  };
}

async function upstreamOpen() {
  return (await upstreams.stats()).open;
}

async function waitUpstreamOpen(atLeast, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let open = await upstreamOpen();
  while (open < atLeast && Date.now() < deadline) {
    await sleep(50);
    open = await upstreamOpen();
  }
  return open;
}

function sumRss(pids) {
  const list = pids();
  if (list.length === 0) throw new Error('no process to measure');
  return list.reduce((sum, pid) => sum + rssKiB(pid), 0);
}

/**
 * RSS growth per idle connection of `instance` (the memory workload, and
 * http-idle-memory.mjs). `open(count)` opens `count` idle connections and throws
 * unless all are open; `close()` closes them all and resolves to how many the
 * balancer had closed already. A warm-up batch (10%) is opened and closed first so
 * one-off growth (code paths run once, first pools) is not charged to the
 * connections; then the baseline, then `opts.idle` connections, 1 s, RSS again.
 */
async function idleRssPerConn(instance, open, close) {
  try {
    await open(Math.max(1, Math.round(opts.idle / 10)));
  } finally {
    await close();
  }
  await sleep(500);
  const before = sumRss(instance.pids);
  let after;
  let lost;
  try {
    await open(opts.idle);
    await sleep(1000);
    after = sumRss(instance.pids);
  } finally {
    lost = await close();
  }
  if (lost > 0) throw new Error(`the balancer closed ${lost} of the ${opts.idle} idle connections before they were measured`);
  return { kibPerConn: (after - before) / opts.idle, rssBeforeKiB: before, rssAfterKiB: after, idle: opts.idle };
}

/** Close the load generator's idle connections: how many the other side had closed. */
async function closeIdle() {
  return (await loadgen.call('idleClose', {}, 10_000)).lost;
}

/**
 * The memory workload: idle proxied connections from 200 source addresses, each
 * counted open at the upstreams.
 */
async function measureMemory(target, instance) {
  const base = await upstreamOpen();
  const open = async (count) => {
    const r = await loadgen.call(
      'idleOpen',
      { host: target.host, port: target.port, count, sources: SOURCES, parallel: 100 },
      60_000,
    );
    if (r.opened < count) throw new Error(`opened ${r.opened} of ${count} connections (${r.errors} errors)`);
    const up = await waitUpstreamOpen(base + count, 15_000);
    if (up < base + count) throw new Error(`only ${up - base} of ${count} reached the upstreams`);
  };
  const close = async () => {
    const lost = await closeIdle();
    const deadline = Date.now() + 10_000;
    while ((await upstreamOpen()) > base && Date.now() < deadline) await sleep(50);
    return lost;
  };
  return idleRssPerConn(instance, open, close);
}

/**
 * The quiet workload: start-up's own work is left to settle (V8 shrinks a new
 * process's heap some 8-11 s after it starts), then a window with no traffic.
 */
const QUIET_SETTLE_MS = 15_000;
const QUIET_WINDOW_MS = 5_000;

/**
 * The quiet workload: a balancer with nothing to do. Wake-ups a second (a timer that
 * fires while there is nothing to do costs a wake-up, and on a host with many
 * processes, power and other tenants' latency) and % of one core.
 */
async function measureQuiet(target, instance) {
  await sleep(QUIET_SETTLE_MS);
  const pids = instance.pids();
  const wakes0 = wakesOf(pids);
  const cpu0 = cpuSeconds(pids);
  const t0 = performance.now();
  await sleep(QUIET_WINDOW_MS);
  const seconds = (performance.now() - t0) / 1000;
  return { quietWakesPerS: (wakesOf(pids) - wakes0) / seconds, quietCpuPct: ((cpuSeconds(pids) - cpu0) / seconds) * 100 };
}

const WORKLOADS = {
  bulk: {
    title: `Bulk throughput, 1 and ${BULK_STREAMS} streams`,
    run: measureBulk,
    metrics: [
      { key: 'mbPerS', label: 'bulk MB/s', better: 'higher' },
      { key: 'mbPerS4', label: `bulk ${BULK_STREAMS}× MB/s`, better: 'higher' },
    ],
  },
  http: {
    title: 'Small keep-alive HTTP requests, 50 connections',
    run: measureHttp,
    metrics: [
      { key: 'rps', label: 'HTTP req/s', better: 'higher' },
      { key: 'p99Ms', label: 'HTTP p99 ms', better: 'lower' },
      { key: 'cpuUsPerReq', label: 'HTTP CPU µs/req', better: 'lower' },
    ],
    cpuPerUnit: { key: 'cpuUsPerReq', count: 'requests' },
  },
  connrate: {
    title: 'New connections per second, 50 concurrent',
    run: measureConnrate,
    metrics: [
      { key: 'cps', label: 'new conn/s', better: 'higher' },
      { key: 'cpuUsPerConn', label: 'CPU µs/conn', better: 'lower' },
    ],
    cpuPerUnit: { key: 'cpuUsPerConn', count: 'accepted' },
  },
  ws: {
    title: `WebSocket echo round trips (${WS_MESSAGE_BYTES} B messages), 1 client and ${opts.wsClients}`,
    run: measureWs,
    metrics: [
      { key: 'ws1P50Ms', label: 'WS p50 ms, 1 client', better: 'lower' },
      { key: 'ws1P99Ms', label: 'WS p99 ms, 1 client', better: 'lower' },
      { key: 'wsNP50Ms', label: `WS p50 ms, ${opts.wsClients} clients`, better: 'lower' },
      { key: 'wsNP99Ms', label: `WS p99 ms, ${opts.wsClients} clients`, better: 'lower' },
      { key: 'wsNCpuUsPerRt', label: `WS CPU µs/round trip, ${opts.wsClients} clients`, better: 'lower' },
    ],
  },
  memory: {
    title: 'Memory per idle proxied connection',
    run: measureMemory,
    metrics: [{ key: 'kibPerConn', label: 'KiB per idle conn', better: 'lower' }],
    skip: (b) => b === 'direct',
  },
  quiet: {
    title: 'At rest: no traffic',
    run: measureQuiet,
    metrics: [
      { key: 'quietWakesPerS', label: 'wake-ups/s at rest', better: 'lower' },
      { key: 'quietCpuPct', label: 'CPU % at rest', better: 'lower' },
    ],
    skip: (b) => b === 'direct',
  },
};

/** CPU seconds each of the upstreams' processes has used. */
function upstreamsCpu() {
  return upstreams.pids.map(cpuOf);
}

/** Where one measurement's CPU goes: call before it, and cpuShareEnd after. */
function cpuShareStart(instance) {
  const pids = instance.pids();
  return { at: performance.now(), tree: cpuSnapshot(), pids, balancer: pids.map(cpuOf), upstreams: upstreamsCpu() };
}

/**
 * Where the CPU went during one measurement (warm-up included), in % of one core: the
 * balancer's processes (each, and their sum), the upstreams, the load generator (wrk
 * or the Node one, with this runner: this process tree less the rest) and processes
 * outside the benchmark. On a machine where the load generator shares the cores, this
 * says how much of the machine the balancer had. `cpuSeconds`: the balancer's.
 */
function cpuShareEnd(start) {
  const tree = cpuSnapshot();
  const seconds = (performance.now() - start.at) / 1000;
  const pct = (cpu) => Math.round((cpu / seconds) * 1000) / 10;
  const perProcess = start.pids.map((pid, i) => cpuOf(pid) - start.balancer[i]);
  const balancer = perProcess.reduce((a, b) => a + b, 0);
  const upsEach = upstreamsCpu().map((cpu, i) => cpu - start.upstreams[i]);
  const ups = upsEach.reduce((a, b) => a + b, 0);
  const treeCpu = (tree.own - start.tree.own) / CLK_TCK;
  return {
    balancerPct: pct(balancer),
    perProcessPct: perProcess.map(pct),
    upstreamsPct: pct(ups),
    // With --upstream-procs: one process near a core means the upstreams, not the balancer, set the pace.
    busiestUpstreamPct: pct(Math.max(...upsEach)),
    loadgenPct: pct(Math.max(0, treeCpu - balancer - ups)),
    othersPct: Math.round(otherCpuPct(start.tree, tree)),
    cpuSeconds: balancer,
  };
}

/**
 * The balancer's CPU per unit of work (`unit`: the result key and the upstream
 * counter that counts the work, requests or accepted connections), unless the
 * workload measured it itself; none for direct, which has no balancer.
 */
function perUnitCpu(unit, result, counts0, counts1) {
  if (!unit || result[unit.key] !== undefined || result.cpuShare.perProcessPct.length === 0) return;
  const done = counts1[unit.count] - counts0[unit.count];
  result[unit.key] = done > 0 ? (result.cpuShare.cpuSeconds * 1e6) / done : null;
}

/** CPU seconds (user + system) the processes have used so far. */
function cpuSeconds(pids) {
  return pids.reduce((sum, pid) => {
    const f = statFields(pid);
    return sum + (Number(f[11]) + Number(f[12])) / CLK_TCK;
  }, 0);
}

// What every workload module may borrow from the runner.
const shared = { opts, log, loadgen: () => loadgen, upstreams: () => upstreams, sources: SOURCES, cpuSeconds, median, fmt, fmtRatio };
const httpAffinity = createHttpAffinity({
  ...shared,
  tools,
  wrk,
  peersDir,
  tmpDir: () => tmpDir,
  writeFile: (file, text) => writeFileSync(file, text),
});
/**
 * Workloads with `rows` run their own rows (several per balancer) and write their own
 * tables (markdown order); the others run every balancer and share the main tables.
 */
const ROW_WORKLOADS = {
  'http-affinity': httpAffinity,
  'http-memory': createHttpIdleMemory({ ...shared, idleRssPerConn, closeIdle }),
  'sni-affinity': createSniAffinity(shared),
};
for (const [w, m] of Object.entries(ROW_WORKLOADS)) WORKLOADS[w] = { title: m.title, metrics: m.metrics, rows: m.rows, run: m.run };

/** What one round runs for workload `w`: { id, balancer, spec? } per row. */
function rowsOf(w) {
  return WORKLOADS[w].rows?.(balancers) ?? balancers.map((b) => ({ id: b, balancer: b }));
}
const tableWorkloads = () => workloads.filter((w) => !WORKLOADS[w].rows);

// ---- statistics and tables ---------------------------------------------------------

function summarize(results) {
  const summary = {};
  for (const w of tableWorkloads()) {
    for (const m of WORKLOADS[w].metrics) {
      const id = `${w}.${m.key}`;
      const row = {};
      for (const b of balancers) {
        const runs = (results[w]?.[b] ?? []).filter((r) => r && !r.error && Number.isFinite(r[m.key]));
        row[b] = { median: median(runs.map((r) => r[m.key])), runs: runs.map((r) => r[m.key]) };
      }
      for (const b of balancers) {
        const v = row[b].median;
        const d = row.direct?.median;
        const h = row.haproxy?.median;
        row[b].vsDirect = v !== null && d ? v / d : null;
        row[b].vsHaproxy = v !== null && h ? v / h : null;
      }
      summary[id] = { label: m.label, better: m.better, workload: w, metric: m.key, byBalancer: row };
    }
  }
  return summary;
}

/**
 * Where the CPU went, per workload and row: medians over the rounds, in % of one core,
 * the balancer's processes one by one after its sum.
 */
function cpuShareMarkdown(results) {
  const out = [
    '### Where the CPU went (% of one core, medians; warm-up included)\n',
    `The balancer (each of its processes in brackets), the load generator (with this runner), the upstreams${upstreams.pids.length > 1 ? ' (and their busiest process)' : ''}, and processes ` +
      `outside the benchmark, ${pinning ? `on ${os.cpus().length} CPUs, each side pinned as above` : `on ${os.cpus().length} CPUs shared by all of them`}.\n`,
    '| workload | balancer | balancer % | load generator % | upstreams % | others % |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const w of workloads) {
    for (const row of rowsOf(w)) {
      const shares = (results[w]?.[row.id] ?? []).map((r) => r?.cpuShare).filter(Boolean);
      if (shares.length === 0) continue;
      const m = (key) => fmt(median(shares.map((c) => c[key])));
      const processes = Math.max(...shares.map((c) => c.perProcessPct.length));
      const each =
        processes > 1
          ? ` (${Array.from({ length: processes }, (_, i) => fmt(median(shares.map((c) => c.perProcessPct[i]).filter(Number.isFinite)))).join(' + ')})`
          : '';
      const label = row.label ?? LABELS[row.id] ?? row.id;
      const busiest = upstreams.pids.length > 1 ? ` (busiest ${m('busiestUpstreamPct')})` : '';
      out.push(`| ${w} | ${label} | ${processes ? `${m('balancerPct')}${each}` : '—'} | ${m('loadgenPct')} | ${m('upstreamsPct')}${busiest} | ${m('othersPct')} |`);
    }
  }
  return out.join('\n');
}

function tables(summary, results) {
  const ids = Object.keys(summary);
  const arrow = (id) => (summary[id].better === 'higher' ? '↑' : '↓');
  const head = (first) =>
    `| ${first} | ${ids.map((id) => `${summary[id].label} ${arrow(id)}`).join(' | ')} |\n| --- | ${ids.map(() => '---:').join(' | ')} |`;
  const rows = (cell) => balancers.map((b) => `| ${LABELS[b]} | ${ids.map((id) => cell(summary[id].byBalancer[b], id, b)).join(' | ')} |`).join('\n');
  const out = [];
  out.push(`### Medians (${opts.rounds} round${opts.rounds > 1 ? 's' : ''}, ${opts.duration} s each; ↑ higher is better, ↓ lower is better)\n`);
  out.push(head('balancer'));
  out.push(rows((c) => fmt(c.median)));
  if (balancers.includes('direct')) {
    out.push('\n### Ratio to direct (median ÷ direct median)\n');
    out.push(head('balancer'));
    out.push(rows((c) => fmtRatio(c.vsDirect)));
  }
  if (balancers.includes('haproxy')) {
    out.push('\n### Ratio to HAProxy (median ÷ HAProxy median; ↑ columns: above 1 beats HAProxy, ↓ columns: below 1 beats it)\n');
    out.push(head('balancer'));
    out.push(rows((c) => fmtRatio(c.vsHaproxy)));
  }
  out.push('\n### Every run (spread)\n');
  out.push(head('balancer'));
  out.push(rows((c) => (c.runs.length ? c.runs.map(fmt).join(' / ') : '—')));
  const errors = [];
  for (const w of tableWorkloads()) {
    for (const b of balancers) {
      (results[w]?.[b] ?? []).forEach((r, i) => {
        if (r?.error) errors.push(`- ${w}, ${LABELS[b]}, round ${i + 1}: ${r.error.split('\n')[0]}`);
        else if (r?.errors) errors.push(`- ${w}, ${LABELS[b]}, round ${i + 1}: ${r.errors} client-side errors during the run`);
      });
    }
  }
  if (errors.length) out.push(`\n### Errors\n\n${errors.join('\n')}`);
  return out.join('\n');
}

// ---- main ---------------------------------------------------------------------------

/** How each side-by-side workload of this run was measured, for the markdown. */
function toolsLine() {
  const d = opts.duration;
  const line = {
    bulk:
      tools.bulk === 'iperf3'
        ? `bulk iperf3 -t ${d} -O ${opts.warmup}, then the same with -P ${BULK_STREAMS}`
        : `bulk a Node writer into a sink, 1 stream then ${BULK_STREAMS}`,
    http: `keep-alive HTTP ${tools.http === 'wrk' ? `wrk -t${opts.wrkThreads} -c50 -d${d}s --latency` : 'Node loop, 50 connections'}`,
    connrate: `new connections ${
      tools.connrate === 'wrk' ? `wrk -t${opts.wrkThreads} -c50 -d${d}s -H 'Connection: close'` : 'Node client, 50 concurrent, from 200 source addresses'
    }`,
    ws:
      `WebSocket echo: a Node \`ws\` client process, ${WS_MESSAGE_BYTES}-byte binary messages, each client sends the next when ` +
      `its echo is back; 1 client, then ${opts.wsClients} from ${Math.min(opts.wsClients, SOURCES.length)} source addresses; ${opts.warmup} s warm-up, ${d} s measured`,
    memory: `memory: ${opts.idle.toLocaleString('en-US')} idle connections from ${SOURCES.length} source addresses, VmRSS delta`,
    quiet:
      `quiet: no traffic, from ${QUIET_SETTLE_MS / 1000} s after the balancer listens, ${QUIET_WINDOW_MS / 1000} s measured: ` +
      'voluntary context switches of every thread of its processes (each a sleep ended: a wake-up), and their CPU',
  };
  return tableWorkloads().map((w) => line[w]).join('; ');
}

const FAIRNESS =
  (opts.peerThreads === 1
    ? "Every balancer gets one core's worth: HAProxy `nbthread 1`, nginx `worker_processes 1`, tether and the naive proxy are single-threaded Node. "
    : `Every core: HAProxy \`nbthread ${opts.peerThreads}\`, nginx \`worker_processes ${opts.peerThreads}\`, tether with 1 worker and with 2 ` +
      '(`TETHER_WORKERS=2`: a control plane and two relaying processes), the naive proxy single-threaded Node. ') +
  `Upstreams (${opts.upstreamProcs === 1 ? 'one Node process' : `${opts.upstreamProcs} Node processes`}) and load generators ` +
  `(${[...new Set([tools.bulk, tools.http, tools.connrate, 'node'])].map((t) => (t === 'node' ? 'a Node client' : t)).join(', ')}) run in processes of their own, ` +
  (pinning
    ? `pinned (taskset): balancers on CPUs ${opts.balancerCpus ?? 'any'}, load generators and this runner on ${opts.loadCpus ?? 'any'}, ` +
      `upstreams on ${opts.upstreamCpus ?? 'any'}, of ${os.cpus().length}. `
    : `on the same ${os.cpus().length} CPUs. `) +
  'Each measurement starts a fresh balancer; rounds interleave the balancers.' +
  (opts.node
    ? ` Rows that name Node ${opts.node.version} run tether on that Node (\`--node\`; everything else runs on ${process.version})` +
      (nodeHasReusePort(opts.node.version) ? ', where each worker listens on a socket of its own (`reusePort`).' : '.')
    : '');

async function main() {
  log(`bench: ${balancers.length} balancers (${balancers.join(', ')}), workloads ${workloads.join(', ')}, ${opts.rounds} round(s) x ${opts.duration} s`);
  for (const [name, p] of Object.entries(peers)) log(`  ${name.padEnd(8)} ${p.ok ? `found ${p.version}` : `MISSING: ${p.why}`}`);
  if (aptCommand) {
    log(`bench: missing peers are left out (direct and tether always run). To add them:\n  ${aptCommand}`);
  }
  if (skipped.length) log(`bench: skipping ${skipped.join(', ')} (not installed)`);
  if (opts.idle < idleWanted) {
    log(
      `bench: open-file limit ${nofile}: the memory and http-memory workloads use ${opts.idle} idle connections, not ${idleWanted} ` +
        `(a balancer holds two descriptors per connection: raise the hard limit, ulimit -Hn, to ${2 * idleWanted + 400} or more)`,
    );
  }
  log(`bench: bulk via ${tools.bulk}, keep-alive HTTP via ${tools.http}, new connections via ${tools.connrate}`);
  log(`bench: ${FAIRNESS}`);

  const idle0 = cpuSnapshot();
  await sleep(1000);
  const preflightBusyPct = Math.round(otherCpuPct(idle0, cpuSnapshot()));
  if (preflightBusyPct >= BUSY_PCT) {
    log(`bench: WARNING: before starting, other processes used ${preflightBusyPct}% of a core: expect noisy numbers`);
  }

  tmpDir = mkdtempSync(join(os.tmpdir(), 'tether-bench-'));
  const watchdogMs = (opts.quick ? 5 : 20) * 60_000;
  const watchdog = setTimeout(() => abort(new Error(`the whole run took longer than ${watchdogMs / 60_000} min`)), watchdogMs);
  watchdog.unref();

  const sessionHttp = workloads.includes('http-affinity') || workloads.includes('http-memory') ? 3 : 0;
  upstreams = await forkUpstreams({
    http: 3,
    sink: tools.bulk === 'node' ? 3 : 0,
    'session-http': sessionHttp,
    ws: workloads.includes('ws') ? 3 : 0,
    sni: workloads.includes('sni-affinity') ? 3 : 0,
  });
  loadgen = await forkHelper('loadgen.mjs', [], 'loadgen');
  checkPinned(upstreams.pids, opts.upstreamCpus, 'an upstream process');
  checkPinned([process.pid, loadgen.pid], opts.loadCpus, 'the runner or its load generator');
  if (workloads.includes('bulk') && tools.bulk === 'iperf3') {
    iperfPorts = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const logFd = openSync(join(tmpDir, `iperf3-${port}.log`), 'a');
      const child = spawn(...pinnedCommand(opts.upstreamCpus, 'iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port)]), { stdio: ['ignore', logFd, logFd] });
      closeSync(logFd);
      trackChild(child, 'iperf3 -s');
      iperfPorts.push(port);
    }
    const deadline = Date.now() + 10_000;
    while (!iperfPorts.every(listening) && Date.now() < deadline) await sleep(25);
    if (!iperfPorts.every(listening)) throw new Error('iperf3 -s did not start');
  }

  const results = {};
  for (let round = 1; round <= opts.rounds; round++) {
    for (const w of workloads) {
      results[w] ??= {};
      for (const row of rowsOf(w)) {
        const b = row.id;
        results[w][b] ??= [];
        if (WORKLOADS[w].skip?.(b)) continue;
        await waitQuiet();
        const t0 = Date.now();
        const cpu0 = cpuSnapshot();
        let instance;
        let result;
        try {
          instance = await startBalancer(row.balancer, upstreamsFor(w), row.spec);
          checkPinned(instance.pids(), opts.balancerCpus, row.label ?? b);
          const counts0 = await upstreams.stats();
          const share0 = cpuShareStart(instance);
          result = await WORKLOADS[w].run(instance, instance, row);
          result.cpuShare = cpuShareEnd(share0);
          perUnitCpu(WORKLOADS[w].cpuPerUnit, result, counts0, await upstreams.stats());
        } catch (err) {
          result = { error: String(err?.message ?? err) };
        } finally {
          await instance?.stop();
        }
        result.otherCpuPct = Math.round(otherCpuPct(cpu0, cpuSnapshot()));
        results[w][b].push(result);
        const busyNote = result.otherCpuPct >= BUSY_PCT ? `  [other processes used ${result.otherCpuPct}% of a core]` : '';
        const shown = result.error
          ? `FAILED: ${result.error.split('\n')[0]}`
          : WORKLOADS[w].metrics.map((m) => `${m.label} ${fmt(result[m.key])}`).join(', ');
        log(`  round ${round}/${opts.rounds} ${w.padEnd(8)} ${b.padEnd(7)} ${shown}  (${((Date.now() - t0) / 1000).toFixed(1)} s)${busyNote}`);
      }
    }
  }

  await cleanup();
  cleaningUp = false;
  const seconds = (Date.now() - started) / 1000;

  const summary = summarize(results);
  const rowWorkloads = workloads
    .filter((w) => ROW_WORKLOADS[w])
    .map((w) => ({ w, module: ROW_WORKLOADS[w], rows: ROW_WORKLOADS[w].rows(balancers) }))
    .filter((x) => x.rows.length);
  const rowSummary = Object.assign({}, ...rowWorkloads.map(({ w, module, rows }) => module.summarize(results[w], rows)));
  const rowSections = rowWorkloads.map(({ w, module, rows }) => `\n${module.markdown(rowSummary, results[w], rows)}`);
  // http mode's targets (issue 17) come after the last http section.
  const lastHttp = rowWorkloads.findLastIndex(({ w }) => w === 'http-affinity' || w === 'http-memory');
  if (lastHttp >= 0) rowSections.splice(lastHttp + 1, 0, `\n${httpTargetsMarkdown(evaluateHttpTargets(rowSummary))}`);
  const others = Object.values(results).flatMap((byB) => Object.values(byB).flat()).map((r) => r.otherCpuPct);
  const busyRuns = others.filter((v) => v >= BUSY_PCT).length;
  const background =
    `Background load: before the run other processes used ${preflightBusyPct}% of a core; during the measurements ` +
    `a median ${median(others) ?? 0}% (max ${Math.max(0, ...others)}%)` +
    (busyRuns ? `; ${busyRuns} of ${others.length} runs had ${BUSY_PCT}% or more, so expect noise (see otherCpuPct in ${opts.out}.json).` : '.');
  const cpus = os.cpus();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const git = spawnSync('git', ['-C', root, 'describe', '--always', '--dirty'], { encoding: 'utf8', timeout: 5000 });
  const machine = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
  const peerVersions = Object.fromEntries(Object.entries(peers).map(([k, p]) => [k, p.ok ? p.version : null]));
  const md = [
    `## tether benchmark, ${new Date().toISOString()}`,
    '',
    `Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}; ` +
      `tether ${pkg.version} (${git.stdout?.trim() || 'no git'}); ` +
      Object.entries(peerVersions).map(([k, v]) => `${k} ${v ?? 'missing'}`).join(', ') + '.',
    '',
    FAIRNESS,
    '',
    background,
    '',
    tableWorkloads().length ? `Tools: ${toolsLine()}. MB = 10^6 bytes.` : workloads.includes('http-affinity') ? `Tools: ${httpAffinity.tool()} (below).` : '',
    aptCommand ? `\nMissing peers (left out): ${missing.map(([k]) => k).join(', ')}. Install: \`${aptCommand}\`` : '',
    '',
    tableWorkloads().length ? tables(summary, results) : '',
    tableWorkloads().length ? `\n${targetsMarkdown(evaluateTargets(summary))}` : '',
    tableWorkloads().length ? `\n![side-by-side chart: each balancer's median ÷ HAProxy's](${opts.out}.svg)` : '',
    ...rowSections,
    tableWorkloads().length && balancers.includes('tether-w2') ? `\n${workerTargetsMarkdown(evaluateWorkerTargets(summary), opts.peerThreads)}` : '',
    `\n${cpuShareMarkdown(results)}`,
    '',
    `Run time: ${seconds.toFixed(0)} s.`,
  ]
    .join('\n')
    .replace(/\n{3,}/g, '\n\n'); // sections left out leave no gaps
  process.stdout.write(`${md}\n`);

  mkdirSync(resultsDir, { recursive: true });
  const json = {
    date: new Date().toISOString(),
    durationS: Math.round(seconds),
    machine,
    tether: { version: pkg.version, git: git.stdout?.trim() || null },
    peers: peerVersions,
    missing: missing.map(([k, p]) => ({ peer: k, why: p.why })),
    installCommand: aptCommand,
    options: { ...opts, tools, balancers, workloads },
    fairness: FAIRNESS,
    background: { preflightOtherCpuPct: preflightBusyPct, note: background },
    summary: { ...summary, ...rowSummary },
    runs: results,
  };
  writeFileSync(join(resultsDir, `${opts.out}.json`), `${JSON.stringify(json, null, 2)}\n`);
  if (tableWorkloads().length) writeFileSync(join(resultsDir, `${opts.out}.svg`), renderChart(json));

  const scenarioMd = await runScenarios();
  writeFileSync(join(resultsDir, `${opts.out}.md`), `${md}\n${scenarioMd}`);
  const svg = tableWorkloads().length ? `, ${opts.out}.svg` : '';
  log(`bench: wrote native-bench/results/${opts.out}.json${svg} and ${opts.out}.md in ${((Date.now() - started) / 1000).toFixed(0)} s`);

  await cleanup();
  if (opts.keepTmp) log(`bench: temp directory kept: ${tmpDir}`);
  else rmSync(tmpDir, { recursive: true, force: true });
}

/** Runs the chosen scenario scripts one after another; returns their markdown. */
async function runScenarios() {
  let out = '';
  for (const name of opts.scenarios) {
    const { file, title, timeoutMs, quick = true } = SCENARIOS[name];
    const passQuick = opts.quick && quick;
    const args = [join(here, file), ...(passQuick ? ['--quick'] : [])];
    log(`bench: node native-bench/${file}${passQuick ? ' --quick' : ''}`);
    const r = await runCapture(process.execPath, args, { timeoutMs });
    const section =
      r.code === 0
        ? `\n## ${title} (node native-bench/${file})\n\n${r.stdout.trim()}\n`
        : `\n## ${title}\n\nnative-bench/${file} failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}\n`;
    process.stdout.write(section);
    out += section;
  }
  return out;
}

const entry = workloads.length === 0 ? runScenarios().then(() => log('bench: scenarios only (--workloads=none); results in native-bench/results/')) : main();
entry.then(
  () => process.exit(0),
  (err) => abort(err),
);
