#!/usr/bin/env node
/**
 * Lookup speed: what one routing decision costs on the thread that moves bytes.
 *
 *   npm run build && node native-bench/lookup.mjs [--quick]
 *
 * 1. Key hashing, per call, on 10-40 byte keys (addresses, session ids) and 1-4 KiB
 *    keys (long tokens): tether's JavaScript XXH32, xxhash-addon (a string must be
 *    copied into a Buffer, and the addon returns a new 4-byte Buffer per call),
 *    xxhash-wasm and hashKey32() as routing uses it, with the bytes each allocates
 *    per call (0 = allocation-free). A sweep finds where each starts to win
 *    (WASM_HASH_MIN_LENGTH, NATIVE_HASH_MIN_LENGTH).
 * 2. Ring point hashing, the bulk work of a ring build in a worker: JS against the addon.
 * 3. Lookups (hash + search) for ring, Maglev and rendezvous at 10, 100 and 1,000
 *    upstreams: the table alone, and UpstreamPool.primary() (hash, search, and the
 *    map from table member to live upstream), with GCs counted.
 *
 * Prints markdown, writes native-bench/results/lookup.json. One thread, no network.
 * Re-runs itself with --expose-gc and a 256 MiB young generation, so that heap
 * growth over a loop with no collection in it is the bytes the loop allocated.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { buildTable } from '../dist/hashing/tables.js';
import {
  NATIVE_HASH_MIN_LENGTH,
  WASM_HASH_MIN_LENGTH,
  hashKey32,
  nativeHashAvailable,
  wasmHashAvailable,
  xxh32String,
  xxh32StringNative,
  xxh32StringWasm,
} from '../dist/hashing/hash.js';
import { UpstreamPool } from '../dist/routing/pool.js';

const here = dirname(fileURLToPath(import.meta.url));
if (typeof globalThis.gc !== 'function') {
  const flags = ['--expose-gc', '--max-semi-space-size=256', '--min-semi-space-size=256'];
  const r = spawnSync(process.execPath, [...flags, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const quick = process.argv.includes('--quick');
const require = createRequire(import.meta.url);

// ---- measuring --------------------------------------------------------------

let gcCount = 0;
new PerformanceObserver((list) => {
  gcCount += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });
const settle = () => new Promise((r) => setTimeout(r, 20));

/**
 * Bytes allocated per call, steady state: the least heap growth of three loops of
 * 100,000 calls, each begun right after a full collection (none runs inside one
 * with this young generation; a loop that saw one is not counted).
 */
async function bytesPerCall(inputs, fn) {
  let sink = 0;
  let best = Infinity;
  const calls = 100_000;
  for (let r = 0; r < 3; r++) {
    globalThis.gc();
    await settle();
    const gc0 = gcCount;
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < calls; i++) sink ^= fn(inputs[i % inputs.length]);
    const grown = process.memoryUsage().heapUsed - before;
    await settle();
    if (gcCount === gc0) best = Math.min(best, Math.max(0, grown) / calls);
  }
  if (sink === 0.5) console.log('unreachable');
  return best === Infinity ? null : Math.round(best * 10) / 10;
}

/**
 * ns per call of fn over `inputs` (cycled): passes sized to ~150 ms (50 quick),
 * best of 5, after a warm-up; then the bytes it allocates per call.
 */
async function timeCalls(inputs, fn) {
  let sink = 0;
  let calls = 0;
  const target = (quick ? 50 : 150) * 1e6;
  const warm = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - warm) < target / 3) {
    for (let i = 0; i < inputs.length; i++) sink ^= fn(inputs[i]);
    calls += inputs.length;
  }
  const passes = Math.max(1, Math.ceil(calls / inputs.length));
  await settle();
  const gc0 = gcCount;
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let p = 0; p < passes; p++) for (let i = 0; i < inputs.length; i++) sink ^= fn(inputs[i]);
    best = Math.min(best, Number(process.hrtime.bigint() - start));
  }
  await settle();
  if (sink === 0.5) console.log('unreachable');
  return { ns: best / (passes * inputs.length), gcs: gcCount - gc0, bytes: await bytesPerCall(inputs, fn) };
}

/** Flat ASCII keys of `size` bytes (Buffer#toString output, like keys read off a socket). */
function keysOf(size, count) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
  let x = 12345 + size;
  return Array.from({ length: count }, () => {
    let s = '';
    for (let i = 0; i < size; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      s += alphabet[x % alphabet.length];
    }
    return Buffer.from(s, 'latin1').toString('latin1');
  });
}

// ---- 1. key hashing -----------------------------------------------------------

const wasm = wasmHashAvailable() ? { h32: (s, seed) => xxh32StringWasm(s, seed) } : null;
const addon = nativeHashAvailable() ? require('xxhash-addon').XXHash32 : null;

const HASH_SIZES = [10, 20, 40, 1024, 2048, 4096];
const SWEEP = [24, 32, 48, 64, 96, 128, 256, 384, 512, 640, 768, 896, 1024, 1536];

async function hashRow(size) {
  const strings = keysOf(size, 64);
  for (const s of strings) {
    if (addon && xxh32StringNative(s) !== xxh32String(s)) throw new Error(`addon disagrees at ${size} bytes`);
    if (wasm && wasm.h32(s, 0) !== xxh32String(s)) throw new Error(`wasm disagrees at ${size} bytes`);
  }
  const row = { bytes: size, js: await timeCalls(strings, (s) => xxh32String(s, 0)) };
  if (addon) row.addon = await timeCalls(strings, (s) => xxh32StringNative(s, 0));
  if (wasm) row.wasm = await timeCalls(strings, (s) => wasm.h32(s, 0));
  row.hashKey = await timeCalls(strings, hashKey32);
  return row;
}

const hashing = [];
for (const size of HASH_SIZES) hashing.push(await hashRow(size));
const sweep = [];
if (addon) {
  for (const size of SWEEP) {
    const strings = keysOf(size, 64);
    sweep.push({
      bytes: size,
      jsNs: (await timeCalls(strings, (s) => xxh32String(s, 0))).ns,
      addonNs: (await timeCalls(strings, (s) => xxh32StringNative(s, 0))).ns,
      wasmNs: wasm ? (await timeCalls(strings, (s) => wasm.h32(s, 0))).ns : null,
    });
  }
}
// Smallest size from which the addon stays ahead of JS.
let crossover = null;
for (let i = sweep.length - 1; i >= 0 && sweep[i].addonNs < sweep[i].jsNs; i--) crossover = sweep[i].bytes;
let wasmCrossover = null;
for (let i = sweep.length - 1; i >= 0 && sweep[i].wasmNs !== null && sweep[i].wasmNs < sweep[i].jsNs; i--) wasmCrossover = sweep[i].bytes;

// ---- 2. ring point hashing (what a build does 160 x N times) -------------------

const pointNames = [];
for (let m = 0; m < 100; m++) for (let j = 0; j < 160; j++) pointNames.push(`pod-${m}.default.svc-${j}`);
const points = {
  js: (await timeCalls(pointNames, (s) => xxh32String(s, 0))).ns,
  addon: addon ? (await timeCalls(pointNames, (s) => xxh32StringNative(s, 0))).ns : null,
  wasm: wasm ? (await timeCalls(pointNames, (s) => wasm.h32(s, 0))).ns : null,
};

// ---- 3. lookups ---------------------------------------------------------------

const lookupKeys = Array.from({ length: 4096 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}:${40000 + i}`); // ~20 bytes
const lookups = [];
for (const n of [10, 100, 1000]) {
  const members = Array.from({ length: n }, (_, i) => ({ name: `pod-${i}`, weight: 1 }));
  for (const algorithm of ['ring', 'maglev', 'rendezvous']) {
    const table = buildTable(algorithm, members, { vnodes: 160 });
    const pool = new UpstreamPool(
      { algorithm, vnodes: 160, balanceFactor: 0 },
      members.map((m) => ({ name: m.name, host: '127.0.0.1', port: 9, weight: 1 })),
    );
    await pool.settled(60_000);
    const sample = algorithm === 'rendezvous' && n >= 1000 ? lookupKeys.slice(0, 512) : lookupKeys;
    const hashAndSearch = await timeCalls(sample, (k) => table.primary(hashKey32(k)));
    const viaPool = await timeCalls(sample, (k) => pool.primary(k).slot);
    pool.close();
    lookups.push({ algorithm, upstreams: n, table: hashAndSearch, pool: viaPool });
  }
}

// ---- report -------------------------------------------------------------------

const ns = (r) => (r === undefined || r === null ? '—' : `${(typeof r === 'number' ? r : r.ns).toFixed(0)} ns`);
const gcs = (r) => (r === undefined || r.bytes === null ? '' : ` / ${r.bytes} B`);
const mps = (r) => `${(1e3 / r.ns).toFixed(1)} M/s`;

const lines = [];
const out = (s = '') => lines.push(s);
out('### Key hashing: ns per call / bytes allocated per call (0 B = allocation-free)');
out();
out(`| key bytes | JS XXH32 | xxhash-addon | xxhash-wasm | hashKey32() as routing uses it |`);
out('| ---: | ---: | ---: | ---: | ---: |');
for (const r of hashing) {
  out(`| ${r.bytes} | ${ns(r.js)}${gcs(r.js)} | ${ns(r.addon)}${gcs(r.addon)} | ${ns(r.wasm)}${gcs(r.wasm)} | ${ns(r.hashKey)}${gcs(r.hashKey)} |`);
}
out();
if (sweep.length) {
  out(`Sweep, ns per call (JS / addon / wasm): ${sweep.map((r) => `${r.bytes} B ${r.jsNs.toFixed(0)}/${r.addonNs.toFixed(0)}/${r.wasmNs === null ? '—' : r.wasmNs.toFixed(0)}`).join('; ')}.`);
  out(
    `xxhash-addon is ahead of JS from ${crossover === null ? 'no measured size' : `${crossover} bytes`}, xxhash-wasm from ${wasmCrossover === null ? 'no measured size' : `${wasmCrossover} bytes`}; ` +
      `hashKey32() uses xxhash-wasm from WASM_HASH_MIN_LENGTH = ${WASM_HASH_MIN_LENGTH} (the addon, only without WebAssembly, from NATIVE_HASH_MIN_LENGTH = ${NATIVE_HASH_MIN_LENGTH}).`,
  );
  out();
}
out(`Ring point hashing ("pod-N.default.svc-j", ~24 bytes; a ring build hashes 160 per unit of weight): JS ${ns(points.js)}, xxhash-addon ${ns(points.addon)}, xxhash-wasm ${ns(points.wasm)} per point.`);
out();
out('### Lookups on ~20-byte keys (hash + search): ns / bytes allocated per lookup, one thread');
out();
out('| algorithm | upstreams | table.primary(hashKey32(k)) | lookups/s | UpstreamPool.primary(k) | lookups/s |');
out('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of lookups) {
  out(`| ${r.algorithm} | ${r.upstreams.toLocaleString('en-US')} | ${ns(r.table)}${gcs(r.table)} | ${mps(r.table)} | ${ns(r.pool)}${gcs(r.pool)} | ${mps(r.pool)} |`);
}
const text = lines.join('\n');
console.log(text);

const results = {
  generated: new Date().toISOString(),
  node: process.version,
  cpu: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
  quick,
  hashing,
  sweep,
  crossoverBytes: crossover,
  wasmCrossoverBytes: wasmCrossover,
  nativeHashMinLength: NATIVE_HASH_MIN_LENGTH,
  wasmHashMinLength: WASM_HASH_MIN_LENGTH,
  ringPointHashNs: points,
  lookups,
  markdown: text,
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'lookup.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log('\nwrote native-bench/results/lookup.json');
