#!/usr/bin/env node
/**
 * Ring rebuilds against the data plane: does a membership storm stall the event
 * loop that relays bytes?
 *
 *   npm run build && node native-bench/ring-rebuild.mjs [--quick] [--sizes=10,100,1000,5000]
 *        [--seconds=S] [--blocks=B] [--rounds=N] [--change-every=MS]
 *
 * For each pool size N (N upstreams x 160 vnodes, TETHER_HASH=ring) and each way of
 * building (TETHER_RING_THREADS=0: inline on the main thread; =1: a worker thread),
 * a fresh tether (dist/cli.js, its own process) relays one WebSocket to an echo
 * server (a child process). This process sends a message every 2 ms and times each
 * echo. The run alternates idle blocks (nothing else going on) and rebuilding blocks
 * (a third process drains or undrains one upstream through the admin API every
 * 50 ms: a flapping health check, a rolling deploy; calls do not wait for each other),
 * --blocks of each, S seconds of each in all. Alternating, rather than one long idle
 * phase then one long rebuilding phase, spreads whatever drifts over a run (V8's
 * memory reducer runs a few full collections some 8 s after start-up, the machine's
 * other work) evenly over both. Each change rebuilds the table of N members, or,
 * where a build takes longer than 50 ms, the changes that came meanwhile coalesce.
 * Echoes sent between blocks (while the bench scrapes, and for 100 ms after the last
 * change of a rebuilding block, while its build finishes) are not counted.
 *
 * The change-making process stands for an orchestrator that would run on another
 * host: it is started (and makes a first request) before the first block and uses
 * node:http with a keep-alive agent, the cheapest common client (undici's fetch cost
 * it twice the CPU per call, which on a 2-core machine lands on the echo path).
 *
 * tether's own tether_event_loop_delay_seconds (p99 since the previous scrape, from
 * monitorEventLoopDelay) is read at each block's start and end through
 * GET /metrics?name=... (a whole scrape at 5,000 upstreams stalls tether for tens of
 * ms); a phase's loop delay is the mean of its blocks'. tether_ring_build_seconds and
 * tether_ring_builds_total (how many builds were derived from the previous ring rather
 * than built whole) are read before the first block and after the last.
 *
 * Before each run it waits (up to --quiet-wait seconds, default 30) for a quiet
 * moment, and it records how much CPU other processes took during each phase
 * ("other CPU", % of one core): on a shared 2-core machine that, not tether, is what
 * moves a p99 by milliseconds. Each table cell is the quietest of the rounds (least
 * other CPU over both phases); every run is in the JSON.
 *
 * Writes native-bench/results/ring-rebuild.json and prints a markdown table.
 */
import { fork, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import { cpuSnapshot, otherCpuPct, waitQuiet } from './background.mjs';
import { echoChild, freePort, sleep, waitHealthy } from './local.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const self = fileURLToPath(import.meta.url);

// ---- the orchestrator ---------------------------------------------------------

function parseArgs() {
  const o = { sizes: [10, 100, 1000, 5000], seconds: 10, blocks: 4, rounds: 3, quick: false, changeEvery: 50, quietWait: 30 };
  for (const arg of process.argv.slice(2)) {
    const [k, v] = arg.split('=');
    if (k === '--quick') o.quick = true;
    else if (k === '--sizes') o.sizes = v.split(',').map(Number);
    else if (k === '--seconds') o.seconds = Number(v);
    else if (k === '--rounds') o.rounds = Number(v);
    else if (k === '--blocks') o.blocks = Number(v);
    else if (k === '--change-every') o.changeEvery = Number(v);
    else if (k === '--quiet-wait') o.quietWait = Number(v);
    else {
      process.stderr.write(`ring-rebuild: unknown option ${arg}\n`);
      process.exit(2);
    }
  }
  if (o.quick) {
    o.seconds = Math.min(o.seconds, 4);
    o.blocks = 2;
    o.rounds = 1;
  }
  if (o.sizes.some((n) => !Number.isInteger(n) || n < 2) || !(o.seconds > 0) || !(o.rounds >= 1) || !Number.isInteger(o.blocks) || o.blocks < 1) {
    process.stderr.write('ring-rebuild: --sizes are integers >= 2, --seconds > 0, --rounds >= 1, --blocks an integer >= 1\n');
    process.exit(2);
  }
  return o;
}

const percentile = (sorted, p) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);

function metric(text, name) {
  const m = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

async function scrape(admin) {
  const text = await (await fetch(`${admin}/metrics?name=tether_ring_build_seconds&name=tether_ring_builds_total`)).text();
  return {
    buildSum: metric(text, 'tether_ring_build_seconds_sum'),
    buildCount: metric(text, 'tether_ring_build_seconds_count'),
    // Builds derived from the previous ring (the rest were built whole).
    incremental: Number(/^tether_ring_builds_total\{kind="incremental"\} (\d+)$/m.exec(text)?.[1] ?? NaN),
  };
}

/** tether's loop-delay p99 since the previous read, in ms (the read starts a new window). */
async function loopDelay(admin) {
  const text = await (await fetch(`${admin}/metrics?name=tether_event_loop_delay_seconds`)).text();
  return metric(text, 'tether_event_loop_delay_seconds') * 1000;
}

/** One WebSocket through tether; a message every 2 ms; round trips of each phase. */
function pinger(port) {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/`);
  let samples = [];
  const sentAt = new Map();
  let seq = 0;
  let timer = null;
  socket.on('message', (data) => {
    const n = Number(String(data));
    const t = sentAt.get(n);
    if (t === undefined) return;
    sentAt.delete(n);
    samples.push(performance.now() - t);
  });
  const ready = new Promise((res, rej) => {
    socket.once('open', res);
    socket.once('error', rej);
  });
  return {
    ready,
    start() {
      timer = setInterval(() => {
        sentAt.set(seq, performance.now());
        socket.send(String(seq++));
      }, 2);
    },
    /** Round trips since the last call; echoes still out count as their age so far. */
    take() {
      const now = performance.now();
      const out = samples;
      for (const t of sentAt.values()) if (now - t > 50) out.push(now - t);
      samples = [];
      return out.sort((a, b) => a - b);
    },
    /** Forget every round trip so far, finished or not (their echoes are ignored). */
    drop() {
      samples = [];
      sentAt.clear();
    },
    stop() {
      clearInterval(timer);
      socket.terminate();
    },
  };
}

async function runOne(size, threads, echoPort, dir, seconds, blocks, changeEvery) {
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(dir, `tether-${size}-${threads}.json`);
  const upstreams = Array.from({ length: size }, (_, i) => `pod-${i}=127.0.0.1:${echoPort}`);
  writeFileSync(
    file,
    JSON.stringify({
      admin: `127.0.0.1:${adminPort}`,
      ringThreads: threads,
      logLevel: 'warn',
      accessLog: false,
      listeners: [{ name: 'bench', listen: `127.0.0.1:${port}`, hash: 'ring', vnodes: 160, health: 'off', upstreams }],
    }),
  );
  const child = spawn(process.execPath, [join(root, 'dist/cli.js')], {
    env: { PATH: process.env.PATH ?? '', TETHER_CONFIG: file },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const admin = `http://127.0.0.1:${adminPort}`;
  try {
    await waitHealthy(admin, child, `size ${size}, threads ${threads}`);
    const ping = pinger(port);
    await ping.ready;
    // The process that makes the changes starts (and makes its first request) now, so
    // that its start-up does not land in any block.
    const churn = fork(self, ['--role=churn', `--admin=${admin}`, `--every=${changeEvery}`], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const fromChurn = () => new Promise((res) => churn.once('message', res));
    await fromChurn();
    ping.start();
    await sleep(1000); // warm-up
    const before = await scrape(admin);

    const phases = {
      idle: { rtt: [], loop: [], cpu: [] },
      rebuilding: { rtt: [], loop: [], cpu: [] },
    };
    const blockMs = (seconds * 1000) / blocks;
    let changes = 0;
    for (let b = 0; b < 2 * blocks; b++) {
      const busy = b % 2 === 1;
      const phase = busy ? phases.rebuilding : phases.idle;
      await loopDelay(admin); // starts tether's window
      ping.drop();
      const cpu = cpuSnapshot();
      if (busy) churn.send('start');
      await sleep(blockMs);
      phase.rtt.push(...ping.take());
      if (busy) {
        churn.send('pause');
        changes += (await fromChurn()).calls;
      }
      phase.cpu.push(otherCpuPct(cpu, cpuSnapshot()));
      phase.loop.push(await loopDelay(admin));
      // The last change's build finishes before the next block starts.
      if (busy) await sleep(100);
    }
    churn.send('stop');
    await fromChurn();
    ping.drop();
    const after = await scrape(admin);
    ping.stop();

    const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
    const summary = (p, extra = {}) => {
      const rtt = p.rtt.sort((a, x) => a - x);
      return { otherCpuPct: Math.round(mean(p.cpu)), loopP99Ms: mean(p.loop), echoP50Ms: percentile(rtt, 50), echoP99Ms: percentile(rtt, 99), ...extra, samples: rtt.length };
    };
    const builds = after.buildCount - before.buildCount;
    return {
      size,
      mode: threads === 0 ? 'inline' : 'workers',
      changes,
      builds,
      incrementalBuilds: after.incremental - before.incremental,
      buildMs: builds > 0 ? ((after.buildSum - before.buildSum) / builds) * 1000 : null,
      idle: summary(phases.idle),
      rebuilding: summary(phases.rebuilding, { echoMaxMs: phases.rebuilding.rtt.at(-1) ?? null }),
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
  }
}
async function main() {
  const opts = parseArgs();
  const { dir, echoPort, cleanup } = await echoChild(self, 'tether-rebuild-');
  try {
    const runs = [];
    for (let round = 0; round < opts.rounds; round++) {
      for (const size of opts.sizes) {
        for (const threads of [0, 1]) {
          await waitQuiet(opts.quietWait * 1000);
          const r = await runOne(size, threads, echoPort, dir, opts.seconds, opts.blocks, opts.changeEvery);
          runs.push(r);
          process.stderr.write(
            `  ${String(size).padStart(5)} ${r.mode.padEnd(7)} build ${r.buildMs?.toFixed(1)} ms x ${r.builds} (${r.incrementalBuilds} incremental); ` +
              `loop p99 ${r.idle.loopP99Ms.toFixed(1)} -> ${r.rebuilding.loopP99Ms.toFixed(1)} ms; ` +
              `echo p99 ${r.idle.echoP99Ms.toFixed(2)} -> ${r.rebuilding.echoP99Ms.toFixed(2)} ms; ` +
              `other CPU ${r.idle.otherCpuPct}% / ${r.rebuilding.otherCpuPct}%\n`,
          );
        }
      }
    }
    const rows = [];
    for (const size of opts.sizes) {
      for (const mode of ['inline', 'workers']) {
        const mine = runs.filter((r) => r.size === size && r.mode === mode);
        const other = (r) => Math.max(r.idle.otherCpuPct, r.rebuilding.otherCpuPct);
        const q = mine.reduce((best, r) => (other(r) < other(best) ? r : best));
        rows.push({
          size,
          mode,
          buildMs: q.buildMs,
          builds: q.builds,
          incrementalBuilds: q.incrementalBuilds,
          loopIdle: q.idle.loopP99Ms,
          loopBusy: q.rebuilding.loopP99Ms,
          echoIdle: q.idle.echoP99Ms,
          echoBusy: q.rebuilding.echoP99Ms,
          otherIdle: q.idle.otherCpuPct,
          otherBusy: q.rebuilding.otherCpuPct,
        });
      }
    }
    const f = (x, d = 2) => (x === null ? '—' : x.toFixed(d));
    const cpus = os.cpus();
    const lines = [
      `Ring rebuilds (ring, 160 vnodes; a membership change every ${opts.changeEvery} ms) while one WebSocket echoes every 2 ms through tether; ${opts.seconds} s per phase in ${opts.blocks} alternating blocks, ` +
        `each cell the quietest of ${opts.rounds} round(s); ${cpus.length} x ${cpus[0]?.model ?? '?'}, Node ${process.version}.`,
      '',
      '| upstreams | build | build time | builds | loop delay p99 idle → rebuilding | echo p99 idle → rebuilding | echo p99 Δ | other CPU idle / rebuilding |',
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.size.toLocaleString('en-US')} | ${r.mode} | ${f(r.buildMs, 1)} ms | ${r.builds ?? '—'} | ${f(r.loopIdle, 1)} → ${f(r.loopBusy, 1)} ms | ` +
          `${f(r.echoIdle)} → ${f(r.echoBusy)} ms | ${r.echoBusy === null || r.echoIdle === null ? '—' : `${r.echoBusy - r.echoIdle >= 0 ? '+' : ''}${(r.echoBusy - r.echoIdle).toFixed(2)} ms`} | ${r.otherIdle}% / ${r.otherBusy}% |`,
      ),
    ];
    const text = lines.join('\n');
    console.log(text);
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(
      join(here, 'results', 'ring-rebuild.json'),
      `${JSON.stringify({ generated: new Date().toISOString(), node: process.version, cpus: `${cpus.length} x ${cpus[0]?.model}`, options: opts, rows, runs, markdown: text }, null, 2)}\n`,
    );
    console.log('\nwrote native-bench/results/ring-rebuild.json');
  } finally {
    cleanup();
  }
}

// ---- child roles --------------------------------------------------------------

const role = process.argv.find((a) => a.startsWith('--role='))?.slice(7);
if (role === 'echo') {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (socket) => socket.on('message', (data) => socket.send(data)));
  server.on('listening', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
} else if (role === 'churn') {
  // Drain / undrain pod-0 every --every ms between 'start' and 'pause'; after a pause
  // (or 'stop') report the calls made once all are answered.
  const admin = new URL(process.argv.find((a) => a.startsWith('--admin=')).slice(8));
  const every = Number(process.argv.find((a) => a.startsWith('--every=')).slice(8));
  const { default: http } = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const post = (path, done) => {
    const req = http.request({ host: admin.hostname, port: admin.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': 2 } }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode));
    });
    req.on('error', (err) => {
      process.stderr.write(`ring-rebuild: ${path} failed: ${err}\n`);
      process.exit(1);
    });
    req.end('{}');
  };
  let calls = 0;
  let made = 0;
  let answered = 0;
  const change = () => {
    const action = made++ % 2 === 0 ? 'drain' : 'undrain';
    calls++;
    post(`/upstreams/pod-0/${action}`, (status) => {
      if (status !== 200) {
        process.stderr.write(`ring-rebuild: ${action}: ${status}\n`);
        process.exit(1);
      }
      answered++;
    });
  };
  let timer = null;
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (message) => {
    if (message === 'start') {
      timer = setInterval(change, every);
      return;
    }
    clearInterval(timer);
    const deadline = Date.now() + 30_000;
    while (answered < calls && Date.now() < deadline) await sleep(5);
    process.send({ calls, answered });
    calls = 0;
    answered = 0;
    if (message === 'stop') process.disconnect();
  });
  // One request first, so that the client's first use is not in a block.
  post('/healthz', () => process.send('ready'));
} else {
  await main();
}

