#!/usr/bin/env node
/**
 * Soak: many concurrent proxied connections through one tether process, held with
 * traffic on a share of them, then closed, in cycles; reports what tether's process
 * costs and whether it gives it back (the figures in docs/reliability.md, "Load: 10,000 connections").
 *
 *   node native-bench/soak.mjs [--connections=10000] [--hold=30] [--cycles=2] ...
 *
 * Phases: start (a fresh process) -> warm-up (every connection opened, a tenth busy
 * for 2 s, closed) -> idle (after a full GC: the baseline) -> then per cycle:
 * loaded (every connection open, counted at the upstreams) -> hold (traffic on
 * --busy of them) -> closed (peak RSS: over the hold and the close) -> after (RSS each second for --after seconds,
 * no GC: what V8 has not collected yet is still there) -> after GC (a full GC through
 * the inspector: what tether retains).
 *
 * Why a warm-up cycle and a forced GC: V8 collects only when the program allocates,
 * so an idle process keeps dead sessions until its next GC; and glibc keeps memory
 * that native handles freed in its arena for reuse. The first cycle raises RSS once;
 * a leak would grow it cycle after cycle, which the after-GC figures show.
 *
 * Descriptors are counted in /proc/PID/fd, RSS read from /proc/PID/status, V8's own
 * view from tether's /metrics (prom-client's nodejs_* gauges). Upstreams (echo
 * servers, peers/upstream.mjs) run in a process of their own; clients run here, one
 * 127.0.x.y source address per connection. Writes results/soak.json. Needs a built
 * dist/ (npx tsc -p tsconfig.json) and Linux (/proc). Traffic goes to 127.0.0.0/8
 * only, and the run ends by itself.
 */
import { fork, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');

const HELP = `Usage: node native-bench/soak.mjs [options]

  --connections=N     concurrent proxied connections (default 10000; capped by the
                      open-file limit: tether holds two descriptors per connection)
  --hold=S            seconds to hold them with traffic, per cycle (default 30)
  --cycles=N          load cycles after the warm-up (default 2)
  --busy=F            share of connections carrying traffic (default 0.1)
  --message=BYTES     bytes per echoed message on a busy connection (default 4096)
  --pause=MS          pause between a busy connection's messages (default 50)
  --upstreams=N       echo upstreams (default 4)
  --after=S           seconds to watch RSS after each close, before the GC (default 15)
  --node-args=TEXT    more Node flags for tether, space-separated (e.g. --trace-gc)
  --no-write          do not write native-bench/results/soak.json
`;

function parseArgs(argv) {
  const o = { connections: 10_000, hold: 30, cycles: 2, busy: 0.1, message: 4096, pause: 50, upstreams: 4, after: 15, nodeArgs: '', write: true };
  for (const arg of argv) {
    const [key, value = ''] = arg.replace(/^--/, '').split(/=(.*)/s);
    const num = (min = 0) => {
      const n = Number(value);
      if (value === '' || !Number.isFinite(n) || n < min) throw new Error(`--${key}: "${value}" is not a number >= ${min}`);
      return n;
    };
    switch (key) {
      case 'help': process.stdout.write(HELP); process.exit(0); break;
      case 'connections': o.connections = Math.floor(num(1)); break;
      case 'hold': o.hold = num(); break;
      case 'cycles': o.cycles = Math.floor(num(1)); break;
      case 'busy': o.busy = Math.min(1, num()); break;
      case 'message': o.message = Math.floor(num(1)); break;
      case 'pause': o.pause = num(); break;
      case 'upstreams': o.upstreams = Math.floor(num(1)); break;
      case 'after': o.after = num(); break;
      case 'node-args': o.nodeArgs = value; break;
      case 'no-write': o.write = false; break;
      default: process.stderr.write(`soak: unknown option ${arg}\n${HELP}`); process.exit(2);
    }
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => process.stderr.write(`soak: ${msg}\n`);
const children = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
process.on('SIGINT', () => process.exit(130));

// ---- /proc --------------------------------------------------------------------

const openFds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
function fileLimit() {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const v = (t) => (t === 'unlimited' ? Infinity : Number(t));
  return { soft: v(m[1]), hard: v(m[2]) };
}
/** The median of five samples 200 ms apart (one can catch a GC half-way). */
async function steadyRss(pid) {
  const samples = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssKiB(pid));
    await sleep(200);
  }
  return samples.sort((a, b) => a - b)[2];
}
/** The least of five samples 100 ms apart, half a second on: no admin socket still closing. */
async function settledFds(pid) {
  await sleep(500);
  let least = Infinity;
  for (let i = 0; i < 5; i++) {
    least = Math.min(least, openFds(pid));
    await sleep(100);
  }
  return least;
}

// ---- processes ------------------------------------------------------------------

function startUpstreams(n) {
  const child = fork(join(here, 'peers', 'upstream.mjs'), ['--http=0', `--echo=${n}`], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`upstreams exited (${code})`)));
    child.once('message', (msg) => resolve({ child, ports: msg.echo }));
  });
}
function upstreamStats(up) {
  return new Promise((resolve) => {
    up.child.once('message', resolve);
    up.child.send({ type: 'stats' });
  });
}

/** tether from dist/, with the inspector on loopback so the soak can force a GC. */
function startTether(ports) {
  const args = ['--inspect=127.0.0.1:0', ...opts.nodeArgs.split(' ').filter(Boolean), join(root, 'dist', 'cli.js')];
  const child = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH ?? '',
      TETHER_UPSTREAMS: ports.map((p, i) => `u${i}=127.0.0.1:${p}`).join(','),
      TETHER_LISTEN: '127.0.0.1:0',
      TETHER_ADMIN: '127.0.0.1:0',
      TETHER_HEALTH: 'off',
      TETHER_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let inspector = null;
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    inspector ??= /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(stderr)?.[0] ?? null;
    for (const line of chunk.split('\n')) {
      if (line && !/^(Debugger (listening|attached|ending)|For help)/.test(line)) process.stderr.write(`tether: ${line}\n`);
    }
  });
  let pending = '';
  let accessLines = 0;
  const found = {};
  child.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`tether exited (${code})`)));
    child.stdout.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!line.startsWith('{')) {
          process.stderr.write(`tether: ${line}\n`); // e.g. --trace-gc
          continue;
        }
        const entry = JSON.parse(line);
        if (entry.component === 'access') accessLines++;
        else if (entry.msg === 'listening') found.port = Number(entry.address.split(':').pop());
        else if (entry.msg === 'admin API listening') found.admin = `http://${entry.address}`;
        if (found.port && found.admin && !found.done) {
          found.done = true;
          resolve({ child, pid: child.pid, port: found.port, admin: found.admin, accessLines: () => accessLines, inspector: () => inspector });
        }
      }
    });
  });
}

/**
 * Full, compacting GCs in tether (HeapProfiler.collectGarbage over the inspector):
 * two, because native handles are released by weak callbacks that run after a GC,
 * and what only they held goes in the next one.
 */
async function collectGarbage(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  for (const id of [1, 2]) {
    await new Promise((resolve) => {
      const onMessage = (data) => JSON.parse(String(data)).id === id && (ws.off('message', onMessage), resolve());
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
    });
    await sleep(250);
  }
  ws.close();
  await sleep(500);
}

/** V8's view from tether's /metrics, in KiB (no keep-alive: no admin socket lingers). */
function v8Figures(admin) {
  return new Promise((resolve, reject) => {
    http
      .get(`${admin}/metrics`, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          const kib = (name) => Math.round(Number(new RegExp(`^${name} (\\S+)`, 'm').exec(body)?.[1] ?? NaN) / 1024);
          resolve({ heapTotal: kib('nodejs_heap_size_total_bytes'), heapUsed: kib('nodejs_heap_size_used_bytes'), external: kib('nodejs_external_memory_bytes') });
        });
      })
      .on('error', reject);
  });
}

// ---- clients --------------------------------------------------------------------

/** One source address per connection: 127.0.x.2-250 from a base, as the tests' clientAddress. */
const address = (i, base) => {
  const n = (i + base) % (249 * 250);
  return `127.0.${Math.floor(n / 249)}.${2 + (n % 249)}`;
};

async function openMany(port, count, base) {
  const sockets = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      sockets[i] = await new Promise((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress: address(i, base), noDelay: true });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
      sockets[i].on('error', () => {});
    }
  };
  await Promise.all(Array.from({ length: Math.min(200, count) }, worker));
  return sockets;
}

/** Echo traffic: each busy socket sends a message, waits for all of it, pauses, repeats. */
function traffic(sockets) {
  const message = Buffer.alloc(opts.message, 0x61);
  const t = { running: true, rounds: 0, sent: 0, echoed: 0, dropped: 0, inFlight: 0 };
  for (const s of sockets) {
    let got = 0;
    const send = () => {
      if (!t.running || s.destroyed) return;
      got = 0;
      t.inFlight++;
      t.sent += message.length;
      s.write(message);
    };
    s.on('data', (chunk) => {
      got += chunk.length;
      t.echoed += chunk.length;
      if (got < message.length) return;
      t.rounds++;
      t.inFlight--;
      if (t.running) setTimeout(send, opts.pause);
    });
    s.once('close', () => t.running && t.dropped++);
    send();
  }
  return t;
}

async function closeSockets(sockets) {
  await Promise.all(sockets.map((s) => new Promise((resolve) => (s.closed ? resolve() : (s.once('close', resolve), s.destroy())))));
}

async function waitUntil(what, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

// ---- run ------------------------------------------------------------------------

const up = await startUpstreams(opts.upstreams);
const tether = await startTether(up.ports);
const { pid } = tether;
const upstreamOpen = async (n) => (await upstreamStats(up)).open === n;
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
const phase = async (name, fields = {}) => {
  const row = { fds: openFds(pid), rssKiB: rssKiB(pid), v8: await v8Figures(tether.admin), ...fields };
  log(`${name.padEnd(16)} fds ${String(row.fds).padStart(5)}, RSS ${mib(row.rssKiB).padStart(9)}  (V8 heap ${mib(row.v8.heapTotal)}, used ${mib(row.v8.heapUsed)}, external ${mib(row.v8.external)})`);
  return row;
};

const start = await phase('start');
const limit = fileLimit();
const count = Math.min(opts.connections, Math.floor((limit.soft - start.fds - 64) / 2));
if (count < opts.connections) {
  log(`open-file limit ${limit.soft} (hard ${limit.hard}): tether holds 2 descriptors per connection, so ${count} connections, not ${opts.connections}`);
}
const busyEvery = Math.max(1, Math.round(1 / opts.busy));

// Warm-up: one cycle of the same size, briefly busy.
const warm = await openMany(tether.port, count, 100 * 249);
await waitUntil('warm-up connections at the upstreams', () => upstreamOpen(count), 60_000);
const warmTraffic = traffic(warm.filter((_, i) => i % busyEvery === 0));
await sleep(2_000);
warmTraffic.running = false;
await waitUntil('the warm-up echoes', () => warmTraffic.inFlight === 0, 30_000);
await closeSockets(warm);
await waitUntil('warm-up connections to end', () => upstreamOpen(0), 60_000);
// Until tether's own client sockets have closed too: a socket still closing is alive.
await waitUntil('descriptors back to the start', () => openFds(pid) <= start.fds + 2, 60_000);
await collectGarbage(tether.inspector());
const idle = await phase('idle (after GC)', { rssKiB: await steadyRss(pid), fds: await settledFds(pid) });

const cycles = [];
for (let c = 1; c <= opts.cycles; c++) {
  const openStarted = Date.now();
  const sockets = await openMany(tether.port, count, 0);
  await waitUntil('every connection at the upstreams', () => upstreamOpen(count), 60_000);
  const openMs = Date.now() - openStarted;
  const loaded = await phase(`${c}: loaded`, { rssKiB: await steadyRss(pid) });

  const busy = sockets.filter((_, i) => i % busyEvery === 0);
  let peak = rssKiB(pid);
  const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(pid))), 250);
  const t = traffic(busy);
  await sleep(opts.hold * 1000);
  t.running = false;
  await waitUntil('the last echoes', () => t.inFlight === 0, 30_000);
  const hold = await phase(`${c}: hold`);

  // The peak spans the close too: ending 10,000 sessions allocates (close events, access lines).
  await closeSockets(sockets);
  const closedAt = Date.now();
  await waitUntil('every connection to end', () => upstreamOpen(0), 60_000);
  await waitUntil('descriptors back to idle', () => openFds(pid) <= idle.fds + 2, 60_000);
  const fdsBackMs = Date.now() - closedAt;
  await sleep(1_000);
  clearInterval(sampler);
  peak = Math.max(peak, hold.rssKiB, rssKiB(pid));
  const trace = [];
  for (let s = 0; s < opts.after; s++) {
    await sleep(1_000);
    trace.push(rssKiB(pid));
  }
  const after = await phase(`${c}: after ${opts.after} s`, { rssKiB: await steadyRss(pid), fds: await settledFds(pid) });
  await collectGarbage(tether.inspector());
  const afterGc = await phase(`${c}: after GC`, { rssKiB: await steadyRss(pid) });
  cycles.push({
    openMs,
    traffic: { connections: busy.length, messages: t.rounds, bytesSent: t.sent, bytesEchoed: t.echoed, dropped: t.dropped },
    fds: { loaded: loaded.fds, after: after.fds, backToIdleMs: fdsBackMs },
    rssKiB: { loaded: loaded.rssKiB, peak, after: after.rssKiB, afterGc: afterGc.rssKiB },
    kibPerConnection: Number(((loaded.rssKiB - idle.rssKiB) / count).toFixed(2)),
    rssTraceKiB: trace,
    v8: { loaded: loaded.v8, hold: hold.v8, after: after.v8, afterGc: afterGc.v8 },
  });
}
const accessLines = tether.accessLines();
tether.child.kill('SIGTERM');
up.child.kill('SIGTERM');

const pct = (a, b) => `${a >= b ? '+' : ''}${((a / b - 1) * 100).toFixed(1)}%`;
const rows = [
  ['connections', `${count.toLocaleString('en-US')}; a tenth busy (${opts.message} B echoed every ${opts.pause} ms) for ${opts.hold} s; ${opts.cycles} cycles after a warm-up cycle`],
  ['descriptors', `idle ${idle.fds}; loaded ${cycles.map((c) => c.fds.loaded).join(' / ')}; after ${cycles.map((c) => c.fds.after).join(' / ')}`],
  ['RSS idle (after warm-up and a GC)', mib(idle.rssKiB)],
  ...cycles.map((c, i) => [
    `cycle ${i + 1}`,
    `loaded ${mib(c.rssKiB.loaded)} (${c.kibPerConnection} KiB per connection), peak ${mib(c.rssKiB.peak)}, ` +
      `${opts.after} s after the close ${mib(c.rssKiB.after)} (no GC yet), after a GC ${mib(c.rssKiB.afterGc)} (${pct(c.rssKiB.afterGc, idle.rssKiB)} of idle)`,
  ]),
  ...cycles.map((c, i) => [`cycle ${i + 1} traffic`, `${c.traffic.messages.toLocaleString('en-US')} messages, ${(c.traffic.bytesEchoed / 1e6).toFixed(0)} of ${(c.traffic.bytesSent / 1e6).toFixed(0)} MB echoed, ${c.traffic.dropped} dropped; opened in ${(c.openMs / 1000).toFixed(1)} s`]),
  ['RSS at start (fresh process)', mib(start.rssKiB)],
];
process.stdout.write(`| soak | |\n| --- | --- |\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`);
if (opts.write) {
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '', memMiB: Math.round(os.totalmem() / 2 ** 20), node: process.version },
    options: { ...opts, connections: count, requested: opts.connections, fileLimit: limit },
    accessLines,
    start,
    idle,
    cycles,
  };
  writeFileSync(join(here, 'results', 'soak.json'), `${JSON.stringify(result, null, 2)}\n`);
}
process.exit(0);
