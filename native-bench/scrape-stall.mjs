#!/usr/bin/env node
/**
 * Does a whole GET /metrics stall the event loop that relays bytes?
 *
 *   npm run build && node native-bench/scrape-stall.mjs [--quick] [--sizes=100,1000,5000]
 *        [--scrapes=N] [--fill=K] [--name=FAMILY]... [--tether=PATH] [--label=TEXT] [--out=NAME]
 *
 * For each pool size N a fresh tether (dist/cli.js, its own process; --tether=PATH runs
 * another build, e.g. an older one, for a before/after) balances N upstreams, all on one
 * echo server (a child process; TETHER_HASH=ring, health checks off). First K x N
 * connections (--fill, default 2) from as many loopback source addresses (127.a.b.c)
 * each send a byte, read its echo and close, so connections_total and bytes_total carry
 * a series for most upstreams, as on a balancer that has run for a while. Then this
 * process sends a byte every millisecond on one connection through tether and times
 * each echo: a stall of tether's event loop of S ms shows as an echo of about S ms.
 * (A byte always in flight, sent the moment the previous echo is back, measures the
 * same but keeps three processes busy on a 2-core machine, and the scraper's own CPU
 * then delays echoes by a few ms whatever tether does: 3 ms at 100 upstreams.)
 *
 * A scraper (a child process at the lowest CPU priority, standing for a Prometheus server
 * on another host) fetches the whole of GET /metrics --scrapes times, 300 ms apart, and
 * checks every line of each answer (well-formed, no series twice). For each scrape: how
 * long it took, tether's longest turn of the event loop meanwhile (peers/loop-probe.mjs,
 * loaded into tether with --import, times each turn while told to), and the longest echo
 * during it (from the request to the last byte of the answer; an echo still out at the
 * end counts as its age). An echo crosses tether twice, out and back, so it can wait for
 * two turns. Between scrapes, an idle window of the same length gives the longest echo
 * with no scrape, what the machine's own noise costs.
 *
 * Waits for a quiet moment before each size and records how much CPU other processes
 * took meanwhile (a shared machine). Prints a markdown table, writes
 * native-bench/results/NAME.json (default scrape-stall).
 */
import { fork, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSnapshot, otherCpuPct, waitQuiet } from './background.mjs';
import { echoChild, freePort, median, sleep, waitHealthy } from './local.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const self = fileURLToPath(import.meta.url);

function parseArgs() {
  const o = { sizes: [100, 1000, 5000], scrapes: 15, fill: 2, tether: join(root, 'dist/cli.js'), label: 'this build', out: 'scrape-stall', names: [], quick: false, quietWait: 30 };
  for (const arg of process.argv.slice(2)) {
    const eq = arg.indexOf('=');
    const [k, v] = eq < 0 ? [arg, ''] : [arg.slice(0, eq), arg.slice(eq + 1)];
    if (k === '--quick') o.quick = true;
    else if (k === '--sizes') o.sizes = v.split(',').map(Number);
    else if (k === '--scrapes') o.scrapes = Number(v);
    else if (k === '--fill') o.fill = Number(v);
    else if (k === '--tether') o.tether = resolve(v);
    else if (k === '--label') o.label = v;
    else if (k === '--out') o.out = v;
    else if (k === '--name') o.names.push(v);
    else if (k === '--quiet-wait') o.quietWait = Number(v);
    else if (k.startsWith('--role')) continue;
    else {
      process.stderr.write(`scrape-stall: unknown option ${arg}\n`);
      process.exit(2);
    }
  }
  if (o.quick) o.scrapes = Math.min(o.scrapes, 6);
  if (o.sizes.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(o.scrapes) || o.scrapes < 1 || !(o.fill >= 0) || !/^[\w.-]+$/.test(o.out)) {
    process.stderr.write('scrape-stall: --sizes are integers >= 1, --scrapes an integer >= 1, --fill >= 0, --out a plain file name\n');
    process.exit(2);
  }
  return o;
}


/** Loopback source address number i (127.a.b.c, none of a, b, c 0 or 255). */
function sourceAddress(i) {
  return `127.${1 + Math.floor(i / (254 * 254))}.${1 + (Math.floor(i / 254) % 254)}.${1 + (i % 254)}`;
}

/** One connection through tether: a byte out, its echo back, closed. */
function oneExchange(port, localAddress) {
  return new Promise((res, rej) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.setTimeout(10_000, () => s.destroy(new Error('exchange timed out')));
    s.once('connect', () => s.write('x'));
    s.once('data', () => s.end());
    s.once('error', rej);
    s.once('close', () => res());
    s.resume();
  });
}

/** `count` exchanges from distinct source addresses, `parallel` at a time. */
async function fill(port, count, parallel = 32) {
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await oneExchange(port, sourceAddress(i)).catch(() => failed++);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return failed;
}

/**
 * One connection through tether, a byte sent every millisecond, each echo timed. The
 * echo keeps the order, so each byte that comes back answers the oldest one out.
 */
function pinger(port) {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  /** Send times of the bytes still out, oldest first. */
  const out = [];
  let longest = 0;
  let timer = null;
  socket.on('data', (chunk) => {
    const now = performance.now();
    for (let i = 0; i < chunk.length && out.length > 0; i++) longest = Math.max(longest, now - out.shift());
  });
  const ready = new Promise((res, rej) => {
    socket.once('connect', res);
    socket.once('error', rej);
  });
  return {
    ready,
    start() {
      timer = setInterval(() => {
        out.push(performance.now());
        socket.write('x');
      }, 1);
    },
    /** The longest round trip since the last call; a byte still out counts as its age. */
    take() {
      const result = out.length > 0 ? Math.max(longest, performance.now() - out[0]) : longest;
      longest = 0;
      return result;
    },
    stop() {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

async function runOne(size, opts, echoPort, dir) {
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(dir, `tether-${size}.json`);
  const upstreams = Array.from({ length: size }, (_, i) => `pod-${i}.default.svc=127.0.0.1:${echoPort}`);
  writeFileSync(
    file,
    JSON.stringify({
      admin: `127.0.0.1:${adminPort}`,
      logLevel: 'warn',
      accessLog: false,
      listeners: [{ name: 'bench', listen: `127.0.0.1:${port}`, hash: 'ring', vnodes: 160, health: 'off', upstreams }],
    }),
  );
  // loop-probe.mjs times tether's turns of the event loop while a scrape runs.
  const child = spawn(process.execPath, ['--import', join(here, 'peers/loop-probe.mjs'), opts.tether], {
    env: { PATH: process.env.PATH ?? '', TETHER_CONFIG: file },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const probe = async (what) => {
    if (what === 'start') return child.send({ probe: 'start' });
    const answer = new Promise((res) => child.once('message', res));
    child.send({ probe: 'stop' });
    return answer;
  };
  const admin = `http://127.0.0.1:${adminPort}`;
  const path = `/metrics${opts.names.length > 0 ? `?${opts.names.map((n) => `name=${encodeURIComponent(n)}`).join('&')}` : ''}`;
  const scraper = fork(self, ['--role=scraper', `--url=${admin}${path}`], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const fromScraper = () => new Promise((res) => scraper.once('message', res));
  // The scraper stands for a Prometheus server on another host: at the lowest CPU
  // priority its own work (reading ~2 MB) delays tether and the echo as little as it can.
  os.setPriority(scraper.pid, 19);
  try {
    await waitHealthy(admin, child, `size ${size}`);
    const failed = await fill(port, Math.round(opts.fill * size));
    await waitQuiet(opts.quietWait * 1000);
    const ping = pinger(port);
    await ping.ready;
    ping.start();
    // Warm-up: one scrape, unmeasured (the first one also compiles the render paths).
    scraper.send('scrape');
    await fromScraper();
    const first = await fromScraper();
    await sleep(500);
    const cpu = cpuSnapshot();
    const scrapes = [];
    for (let i = 0; i < opts.scrapes; i++) {
      await sleep(300);
      ping.take();
      await probe('start');
      const t0 = performance.now();
      scraper.send('scrape');
      const { ms } = await fromScraper();
      const windowMs = performance.now() - t0;
      const during = ping.take();
      const { longest: longestTurnMs } = await probe('stop');
      const answer = { ms, ...(await fromScraper()) };
      // The same length of time with no scrape.
      await sleep(150);
      ping.take();
      await sleep(windowMs);
      const idle = ping.take();
      scrapes.push({ ms: answer.ms, windowMs, longestTurnMs, longestEchoMs: during, idleLongestEchoMs: idle, bytes: answer.bytes, lines: answer.lines, problems: answer.problems });
    }
    const otherCpu = Math.round(otherCpuPct(cpu, cpuSnapshot()));
    ping.stop();
    const bad = scrapes.filter((s) => s.problems.length > 0);
    if (bad.length > 0) throw new Error(`malformed scrape at ${size}: ${bad[0].problems.slice(0, 3).join('; ')}`);
    const during = scrapes.map((s) => s.longestEchoMs);
    const idle = scrapes.map((s) => s.idleLongestEchoMs);
    return {
      size,
      filled: Math.round(opts.fill * size),
      fillFailed: failed,
      series: first.series,
      bytes: scrapes[0].bytes,
      scrapeMs: median(scrapes.map((s) => s.ms)),
      longestTurnMs: { median: median(scrapes.map((s) => s.longestTurnMs)), max: Math.max(...scrapes.map((s) => s.longestTurnMs)) },
      longestEchoMs: { median: median(during), max: Math.max(...during) },
      idleLongestEchoMs: { median: median(idle), max: Math.max(...idle) },
      otherCpuPct: otherCpu,
      scrapes,
    };
  } finally {
    scraper.kill();
    child.kill('SIGTERM');
    await new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
  }
}

/** Problems of an exposition: lines that are not HELP, TYPE or a sample; series seen twice. */
function check(text) {
  const problems = [];
  const seen = new Set();
  const series = {};
  const lines = text.split('\n');
  if (lines.at(-1) !== '') problems.push('no newline at the end');
  for (const line of lines.slice(0, -1)) {
    if (line === '') continue;
    if (/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$/.exec(line);
    if (m === null || Number.isNaN(Number(m[3].replace(/^\+?Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity')))) {
      problems.push(`not a sample: ${JSON.stringify(line.slice(0, 120))}`);
      continue;
    }
    const key = `${m[1]}${m[2] ?? ''}`;
    if (seen.has(key)) problems.push(`twice: ${key}`);
    seen.add(key);
    series[m[1]] = (series[m[1]] ?? 0) + 1;
  }
  return { problems, lines: lines.length - 1, series };
}

/** Fetches the whole text with node:http (less CPU than fetch, on the same two cores). */
async function scraperRole(url) {
  const agent = new http.Agent({ keepAlive: true });
  process.on('message', async () => {
    const t0 = performance.now();
    const body = await new Promise((res, rej) => {
      http
        .get(url, { agent }, (answer) => {
          const chunks = [];
          answer.on('data', (c) => chunks.push(c));
          answer.on('end', () => res(Buffer.concat(chunks)));
          answer.on('error', rej);
        })
        .on('error', rej);
    });
    const ms = performance.now() - t0;
    // Answer first, check after: checking ~25,000 lines takes CPU the window should not see.
    process.send({ ms });
    const text = body.toString('utf8');
    const { problems, lines, series } = check(text);
    const per = (name) => series[name] ?? 0;
    process.send({
      bytes: body.length,
      lines,
      problems,
      series: {
        active: per('tether_connections_active'),
        up: per('tether_upstream_up'),
        connections: per('tether_connections_total'),
        bytes: per('tether_bytes_total'),
      },
    });
  });
}

function echoRole() {
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
}

async function main() {
  const opts = parseArgs();
  const { dir, echoPort, cleanup } = await echoChild(self, 'tether-scrape-');
  try {
    const rows = [];
    for (const size of opts.sizes) {
      const r = await runOne(size, opts, echoPort, dir);
      rows.push(r);
      process.stderr.write(
        `scrape-stall: ${size} upstreams: scrape ${r.scrapeMs.toFixed(1)} ms, longest turn ${r.longestTurnMs.median.toFixed(1)} ms, longest echo during it ${r.longestEchoMs.median.toFixed(1)} ms ` +
          `(max ${r.longestEchoMs.max.toFixed(1)}), idle ${r.idleLongestEchoMs.median.toFixed(1)} ms, other CPU ${r.otherCpuPct}%\n`,
      );
    }
    const f = (x) => (x < 9.95 ? x.toFixed(1) : x.toFixed(0));
    const cpus = os.cpus();
    const lines = [
      `### A whole GET /metrics against a relayed echo (${opts.label})`,
      '',
      `One connection through tether sends a byte every millisecond to an echo server; a scraper in another process fetches the whole of /metrics ${opts.scrapes} times. ` +
        `"Longest turn" is tether's longest turn of the event loop during one scrape (peers/loop-probe.mjs, loaded into tether); "longest echo" the longest round trip during one scrape, ` +
        `a byte that crosses tether twice and so can wait for two turns; "idle" the longest echo in windows of the same length with no scrape. Medians of the scrapes, the worst in brackets. ` +
        `Before measuring, ${opts.fill} x N connections from distinct addresses gave most upstreams a connections_total and a bytes_total series. ` +
        `${cpus.length} x ${cpus[0]?.model ?? '?'}, Node ${process.version}.`,
      '',
      '| upstreams | series (active / up / connections / bytes) | text | scrape | longest turn in tether | longest echo during a scrape | idle | other CPU |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.size.toLocaleString('en-US')} | ${r.series.active} / ${r.series.up} / ${r.series.connections} / ${r.series.bytes} | ${(r.bytes / 1e6).toFixed(2)} MB | ${f(r.scrapeMs)} ms | ` +
          `${f(r.longestTurnMs.median)} ms (${f(r.longestTurnMs.max)}) | **${f(r.longestEchoMs.median)} ms** (${f(r.longestEchoMs.max)}) | ${f(r.idleLongestEchoMs.median)} ms (${f(r.idleLongestEchoMs.max)}) | ${r.otherCpuPct}% |`,
      ),
    ];
    const text = lines.join('\n');
    console.log(text);
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(
      join(here, 'results', `${opts.out}.json`),
      `${JSON.stringify({ generated: new Date().toISOString(), node: process.version, cpu: `${cpus.length} x ${cpus[0]?.model ?? 'unknown'}`, options: { ...opts, tether: relative(root, opts.tether) }, rows, markdown: text }, null, 2)}\n`,
    );
    console.log(`\nwrote native-bench/results/${opts.out}.json`);
  } finally {
    cleanup();
  }
}

const role = process.argv.find((a) => a.startsWith('--role='))?.slice('--role='.length);
if (role === 'echo') echoRole();
else if (role === 'scraper') await scraperRole(process.argv.find((a) => a.startsWith('--url='))?.slice('--url='.length));
else await main();
