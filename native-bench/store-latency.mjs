#!/usr/bin/env node
/**
 * What the store costs: latency of the pin calls a listener makes (through the same
 * guard listeners get, TETHER_STORE_TIMEOUT_MS 50), memory store vs a Redis store on
 * loopback, one call at a time and 50 in flight; and how long an admin membership
 * change takes to reach another instance through Redis (write, pub/sub, read back).
 *
 *   npm run build && node native-bench/store-latency.mjs [--ops=N]
 *
 * Starts its own redis-server on a free port (no persistence) and stops it. Without
 * redis-server it says so and measures the memory store only. Prints markdown
 * tables and writes native-bench/results/store-latency.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStore } from '../dist/store/create.js';
import { guardPins } from '../dist/store/guard.js';
import { loadConfig } from '../dist/config/load.js';
import { createLogger } from '../dist/log.js';
import { freePort } from './local.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const OPS = Number(process.argv.find((a) => a.startsWith('--ops='))?.slice(6) ?? 20_000);
const CONCURRENCY = 50;
const PROPAGATIONS = 300;
const log = (line) => process.stderr.write(`${line}\n`);

function pings(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('error', () => resolve(false));
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    socket.write('PING\r\n');
  });
}

async function startRedis() {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) return null;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tether-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !(await pings(port)); i++) await new Promise((r) => setTimeout(r, 50));
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.match(/v=(\S+)/)?.[1] ?? '?';
  return {
    url: `redis://127.0.0.1:${port}`,
    version,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(samples, elapsedMs) {
  const sorted = Float64Array.from(samples).sort();
  return {
    p50us: +(percentile(sorted, 50) * 1000).toFixed(1),
    p99us: +(percentile(sorted, 99) * 1000).toFixed(1),
    opsPerS: Math.round((samples.length / elapsedMs) * 1000),
  };
}

/** `call(i)` OPS times, `concurrency` in flight; latency of each, in ms. */
async function measure(call, concurrency) {
  const samples = new Float64Array(OPS);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < OPS) {
      const i = next++;
      const t = performance.now();
      await call(i);
      samples[i] = performance.now() - t;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return summary(samples, performance.now() - started);
}

async function openStore(store) {
  const config = loadConfig({ TETHER_UPSTREAMS: '127.0.0.1:1', TETHER_STORE: store });
  let errors = 0;
  const s = createStore(config, { logger: createLogger('silent'), onError: () => errors++ });
  if (s.membership && !(await s.membership.ready(10_000))) throw new Error('Redis store did not connect');
  const pins = guardPins(s, 'bench', { timeoutMs: config.storeTimeoutMs, onError: () => errors++ });
  return { store: s, pins, errors: () => errors };
}

async function pinRows(label, store) {
  const { pins, errors, store: s } = await openStore(store);
  const keys = Array.from({ length: 1000 }, (_, i) => `session-${i}-${'x'.repeat(24)}`);
  for (const key of keys) await pins.set(key, 'app1', 600);
  const rows = [];
  for (const concurrency of [1, CONCURRENCY]) {
    rows.push({ store: label, call: 'get (hit)', concurrency, ...(await measure((i) => pins.get(keys[i % keys.length]), concurrency)) });
    rows.push({ store: label, call: 'get (miss)', concurrency, ...(await measure((i) => pins.get(`missing-${i}`), concurrency)) });
    rows.push({ store: label, call: 'set', concurrency, ...(await measure((i) => pins.set(`new-${i}`, 'app2', 600), concurrency)) });
    rows.push({ store: label, call: 'touch', concurrency, ...(await measure((i) => pins.touch(keys[i % keys.length], 600), concurrency)) });
  }
  const failed = errors();
  await s.close();
  return { rows, errors: failed };
}

/** Admin change on A until B has read it back: write, announcement, HGETALL. */
async function propagation(url) {
  const a = await openStore(url);
  const b = await openStore(url);
  let waiting = null;
  b.store.membership.subscribe({
    onChange: (listener) => {
      if (listener !== 'bench' || waiting === null) return;
      void b.store.membership.load('bench').then(() => waiting?.());
    },
    onReady: () => {},
  });
  await new Promise((r) => setTimeout(r, 200));
  const samples = [];
  const started = performance.now();
  for (let i = 0; i < PROPAGATIONS; i++) {
    const heard = new Promise((resolve) => (waiting = resolve));
    const t = performance.now();
    await a.store.membership.write('bench', { upstream: 'app1', drain: i % 2 === 0 ? { deadlineAt: null, by: 'bench', at: Date.now() } : null });
    await heard;
    samples.push(performance.now() - t);
  }
  waiting = null;
  await a.store.close();
  await b.store.close();
  const s = summary(samples, performance.now() - started);
  return { p50ms: +(s.p50us / 1000).toFixed(2), p99ms: +(s.p99us / 1000).toFixed(2), samples: PROPAGATIONS };
}

// ---- new-connection latency through tether's http mode, memory vs Redis store ----

const CLI = join(here, '..', 'dist', 'cli.js');
const SESSIONS = 1000;
const CONNECTIONS_PER_ROUND = Number(process.argv.find((a) => a.startsWith('--connections='))?.slice(14) ?? 2000);
const ROUNDS = 5;
const IN_FLIGHT = 8;

/** Upstreams that echo the x-session header back: the learn rule pins it. */
async function sessionUpstreams() {
  const servers = [];
  for (let i = 0; i < 3; i++) {
    const server = http.createServer((req, res) => {
      res.setHeader('x-session', req.headers['x-session'] ?? '');
      res.setHeader('content-length', 2);
      res.end('ok');
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
  }
  return servers;
}

/** Start the CLI; resolves with its listener port once it logs 'listening'. */
function spawnTether(env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"msg":"listening"'));
      if (line) resolve({ child, port: Number(JSON.parse(line).address.split(':').pop()) });
    });
    child.once('exit', (code) => reject(new Error(`tether exited ${code}: ${err.trim()}`)));
  });
}

/** Connect, send one request, read the whole answer, close: milliseconds. */
function oneConnection(port, session) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect({ host: '127.0.0.1', port });
    let got = '';
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (got.endsWith('\r\n\r\nok')) {
        socket.destroy();
        resolve(performance.now() - started);
      }
    });
    socket.on('error', reject);
    socket.write(`GET / HTTP/1.1\r\nHost: b\r\nx-session: ${session}\r\nConnection: close\r\n\r\n`);
  });
}

async function connectionRound(port, count) {
  const samples = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      samples.push(await oneConnection(port, `session-${Math.floor(Math.random() * SESSIONS)}`));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return samples;
}

async function httpConnectionLatency(redisUrl) {
  const servers = await sessionUpstreams();
  const base = {
    TETHER_MODE: 'http',
    TETHER_LISTEN: '127.0.0.1:0',
    TETHER_ADMIN: 'off',
    TETHER_HEALTH: 'off',
    TETHER_ACCESS_LOG: 'off',
    TETHER_LOG_LEVEL: 'info',
    TETHER_KEY: 'header:x-session',
    TETHER_LEARN: 'header:x-session=(.+)',
    TETHER_UPSTREAMS: servers.map((s, i) => `u${i}=127.0.0.1:${s.address().port}`).join(','),
  };
  const stores = [['memory', 'memory'], ...(redisUrl ? [['redis', redisUrl]] : [])];
  const running = [];
  try {
    for (const [label, store] of stores) running.push({ label, ...(await spawnTether({ ...base, TETHER_STORE: store })) });
    // Learn every session first, so each measured request looks its pin up.
    for (const t of running) {
      for (let i = 0; i < SESSIONS; i += IN_FLIGHT) {
        await Promise.all(Array.from({ length: IN_FLIGHT }, (_, j) => oneConnection(t.port, `session-${i + j}`)));
      }
    }
    const samples = Object.fromEntries(running.map((t) => [t.label, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of running) samples[t.label].push(...(await connectionRound(t.port, CONNECTIONS_PER_ROUND)));
    }
    return running.map((t) => {
      const sorted = samples[t.label].sort((a, b) => a - b);
      return { store: t.label, connections: sorted.length, p50ms: +percentile(sorted, 50).toFixed(3), p99ms: +percentile(sorted, 99).toFixed(3) };
    });
  } finally {
    for (const t of running) t.child.kill('SIGKILL');
    for (const s of servers) s.close();
  }
}

const redis = await startRedis();
log(redis ? `store-latency: redis-server ${redis.version} at ${redis.url}` : 'store-latency: redis-server not installed (apt-get install -y redis-server): memory store only');
const results = { date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model ?? '?', ops: OPS, redis: redis?.version ?? null };
try {
  const memory = await pinRows('memory', 'memory');
  const viaRedis = redis ? await pinRows('redis', redis.url) : null;
  results.pins = [...memory.rows, ...(viaRedis?.rows ?? [])];
  results.guardTimeouts = { memory: memory.errors, redis: viaRedis?.errors ?? null };
  results.propagation = redis ? await propagation(redis.url) : null;
  results.httpConnections = await httpConnectionLatency(redis?.url ?? null);
} finally {
  await redis?.stop();
}

const lines = [
  `Pin calls through the listener guard (TETHER_STORE_TIMEOUT_MS 50), ${OPS} calls each; ${results.node}, ${results.cpu}${results.redis ? `, Redis ${results.redis} on loopback` : ''}:`,
  '',
  '| store | call | in flight | p50 µs | p99 µs | calls/s |',
  '| --- | --- | ---: | ---: | ---: | ---: |',
  ...results.pins.map((r) => `| ${r.store} | ${r.call} | ${r.concurrency} | ${r.p50us} | ${r.p99us} | ${r.opsPerS.toLocaleString('en-US')} |`),
  '',
  `Calls the guard gave up on (answered by hash): memory ${results.guardTimeouts.memory}, Redis ${results.guardTimeouts.redis ?? '—'}.`,
];
if (results.propagation) {
  lines.push('', `Admin change on one instance until another has read it back (${results.propagation.samples} changes): p50 ${results.propagation.p50ms} ms, p99 ${results.propagation.p99ms} ms.`);
}
lines.push(
  '',
  `New connections through tether in http mode (connect, one request whose x-session pin is looked up, answer, close; ${IN_FLIGHT} in flight, ${ROUNDS} interleaved rounds, ${SESSIONS} sessions learned beforehand):`,
  '',
  '| store | connections | p50 ms | p99 ms |',
  '| --- | ---: | ---: | ---: |',
  ...results.httpConnections.map((r) => `| ${r.store} | ${r.connections} | ${r.p50ms} | ${r.p99ms} |`),
);
process.stdout.write(`${lines.join('\n')}\n`);
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'store-latency.json'), `${JSON.stringify(results, null, 2)}\n`);
