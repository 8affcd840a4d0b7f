#!/usr/bin/env node
/**
 * Hash quality and speed of tether's balancer: how evenly each algorithm spreads
 * keys, how many keys move on a membership change, how fast lookups are, and
 * where xxhash-addon starts to beat the JavaScript XXH32 (which sets
 * NATIVE_HASH_MIN_LENGTH in src/hashing/hash.ts).
 *
 *   npm run build && node native-bench/hash-quality.mjs
 *
 * Prints markdown tables and writes the same numbers to
 * native-bench/results/hash-quality.json. No network, no peers: pure CPU.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTable, buildTableData, tableFromData } from '../dist/hashing/tables.js';
import {
  NATIVE_HASH_MIN_LENGTH,
  hashKey,
  nativeHashAvailable,
  xxh32,
  xxh32String,
  xxh32StringNative,
} from '../dist/hashing/hash.js';

const here = dirname(fileURLToPath(import.meta.url));
const KEY_COUNT = 100_000;

const members = (n) => Array.from({ length: n }, (_, i) => ({ name: `up-${i}`, weight: 1 }));

function keyHashes(n) {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = hashKey(`key-${i}`);
  return out;
}

const VARIANTS = [
  { label: 'ring, 40 vnodes', algorithm: 'ring', options: { vnodes: 40 } },
  { label: 'ring, 160 vnodes', algorithm: 'ring', options: { vnodes: 160 } },
  { label: 'ring, 1000 vnodes', algorithm: 'ring', options: { vnodes: 1000 } },
  { label: 'maglev', algorithm: 'maglev', options: { vnodes: 1 } },
  { label: 'rendezvous', algorithm: 'rendezvous', options: { vnodes: 1 } },
  { label: 'modulo', algorithm: 'modulo', options: { vnodes: 1 } },
];

// ---- balance and disruption ------------------------------------------------

function names(table, keys) {
  const out = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = table.members[table.primary(keys[i])].name;
  return out;
}

function fractionMoved(a, b) {
  let moved = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) moved++;
  return moved / a.length;
}

function quality(keys) {
  const rows = [];
  for (const n of [10, 100]) {
    const list = members(n);
    for (const { label, algorithm, options } of VARIANTS) {
      const table = buildTable(algorithm, list, options);
      const perMember = new Float64Array(n);
      for (let i = 0; i < keys.length; i++) perMember[table.primary(keys[i])]++;
      const base = names(table, keys);
      // A member from the middle of the name order leaves; a new name joins.
      const leave = names(buildTable(algorithm, list.filter((m) => m.name !== `up-${n >> 1}`), options), keys);
      const join = names(buildTable(algorithm, [...list, { name: `up-${n}`, weight: 1 }], options), keys);
      rows.push({
        algorithm: label,
        upstreams: n,
        maxOverMean: Math.max(...perMember) / (keys.length / n),
        movedOnLeave: fractionMoved(base, leave),
        movedOnJoin: fractionMoved(base, join),
        ideal: 1 / n,
      });
    }
  }
  return rows;
}

// ---- lookup speed ----------------------------------------------------------

/** Best of `rounds` timed passes (after one warm-up pass) of fn over all keys, in lookups/s. */
function perSecond(keys, fn, rounds = 3) {
  let sink = 0;
  for (let i = 0; i < keys.length; i++) sink += fn(keys[i]);
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < keys.length; i++) sink += fn(keys[i]);
    best = Math.min(best, Number(process.hrtime.bigint() - start));
  }
  if (sink === -1) console.log('unreachable');
  return (keys.length / best) * 1e9;
}

function speed(keys) {
  const rows = [];
  for (const n of [10, 100, 1000]) {
    const list = members(n);
    for (const { label, algorithm, options } of VARIANTS) {
      if (algorithm === 'ring' && options.vnodes !== 160) continue;
      const start = process.hrtime.bigint();
      const data = buildTableData(algorithm, list, options);
      const buildMs = Number(process.hrtime.bigint() - start) / 1e6;
      const table = tableFromData(data);
      const out3 = new Uint32Array(3);
      const outAll = new Uint32Array(n);
      // Rendezvous at 1000 members is O(N) a lookup and O(N^2) for a full order: fewer keys.
      const sample = algorithm === 'rendezvous' && n >= 1000 ? keys.subarray(0, 20_000) : keys;
      const fullSample = keys.subarray(0, Math.max(200, Math.floor(2_000_000 / (n * (algorithm === 'rendezvous' ? n : 4)))));
      rows.push({
        algorithm: label,
        upstreams: n,
        buildMs,
        primaryPerSecond: perSecond(sample, (h) => table.primary(h)),
        order3PerSecond: perSecond(sample, (h) => table.order(h, out3)),
        orderAllPerSecond: perSecond(fullSample, (h) => table.order(h, outAll)),
      });
    }
  }
  return rows;
}

// ---- JS XXH32 against xxhash-addon -----------------------------------------

const SIZES = [16, 40, 64, 128, 256, 512, 768, 1024, 1536, 2048, 4096];
const REPORTED = new Set([16, 40, 1024, 4096]);

/**
 * `count` distinct ASCII keys of `size` bytes. Built by concatenation they would be
 * V8 cons-strings (ropes), which charCodeAt reads up to 2x slower; keys parsed off
 * a socket come from Buffer#toString and are flat, so flatten them the same way.
 */
function asciiKeys(size, count) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
  const out = [];
  let x = 12345;
  for (let k = 0; k < count; k++) {
    let s = '';
    for (let i = 0; i < size; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      s += alphabet[x % alphabet.length];
    }
    out.push(Buffer.from(s, 'latin1').toString('latin1'));
  }
  return out;
}

/** Hashes per second of fn over `inputs`: passes sized to ~40 ms, best of 5. */
function hashRate(inputs, fn) {
  let sink = 0;
  let passes = 0;
  const warm = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - warm) < 40e6) {
    for (const input of inputs) sink ^= fn(input);
    passes++;
  }
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let p = 0; p < passes; p++) for (const input of inputs) sink ^= fn(input);
    best = Math.min(best, Number(process.hrtime.bigint() - start));
  }
  if (sink === 0.5) console.log('unreachable');
  return ((passes * inputs.length) / best) * 1e9;
}

function hashSpeed() {
  if (!nativeHashAvailable()) return { rows: [], crossover: null };
  const { XXHash32 } = createRequire(import.meta.url)('xxhash-addon');
  const rows = [];
  for (const size of SIZES) {
    const strings = asciiKeys(size, 64);
    const buffers = strings.map((s) => Buffer.from(s));
    for (const s of strings) if (xxh32String(s) !== xxh32StringNative(s)) throw new Error(`mismatch at ${size} bytes`);
    rows.push({
      bytes: size,
      // What hashKey() does on each side: a string in, a uint32 out.
      jsStringPerSecond: hashRate(strings, (s) => xxh32String(s, 0)),
      nativeStringPerSecond: hashRate(strings, (s) => xxh32StringNative(s, 0)),
      // The bare hash over bytes already in a Buffer, for reference.
      jsBytesPerSecond: hashRate(buffers, (b) => xxh32(b, 0)),
      nativeBytesPerSecond: hashRate(buffers, (b) => XXHash32.hash(b).readUInt32BE(0)),
    });
  }
  // Smallest measured size from which the native string path stays ahead.
  let crossover = null;
  for (let i = rows.length - 1; i >= 0 && rows[i].nativeStringPerSecond > rows[i].jsStringPerSecond; i--) crossover = rows[i].bytes;
  return { rows, crossover };
}

// ---- report ----------------------------------------------------------------

const pct = (x) => `${(x * 100).toFixed(1)}%`;
const mps = (x) => (x >= 1e5 ? `${(x / 1e6).toFixed(2)} M/s` : `${(x / 1e3).toFixed(1)} k/s`);

const keys = keyHashes(KEY_COUNT);
const balance = quality(keys);
const lookups = speed(keys);
const hashing = hashSpeed();

console.log(`## Balance and disruption (${KEY_COUNT.toLocaleString('en')} keys "key-i")\n`);
console.log('| algorithm | upstreams | fullest / mean | moved when one leaves | moved when one joins | ideal 1/N |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of balance) {
  console.log(
    `| ${r.algorithm} | ${r.upstreams} | ${r.maxOverMean.toFixed(3)} | ${pct(r.movedOnLeave)} | ${pct(r.movedOnJoin)} | ${pct(r.ideal)} |`,
  );
}

console.log('\n## Lookup speed (one thread)\n');
console.log('| algorithm | upstreams | build | primary() | order(), 3 | order(), all |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of lookups) {
  console.log(
    `| ${r.algorithm} | ${r.upstreams} | ${r.buildMs.toFixed(1)} ms | ${mps(r.primaryPerSecond)} | ${mps(r.order3PerSecond)} | ${mps(r.orderAllPerSecond)} |`,
  );
}

if (hashing.rows.length > 0) {
  console.log('\n## XXH32: JavaScript against xxhash-addon (ASCII keys)\n');
  console.log('| key bytes | JS, string | addon, string | JS, Buffer | addon, Buffer |');
  console.log('| ---: | ---: | ---: | ---: | ---: |');
  for (const r of hashing.rows) {
    const mark = REPORTED.has(r.bytes) ? '' : ' (sweep)';
    console.log(
      `| ${r.bytes}${mark} | ${mps(r.jsStringPerSecond)} | ${mps(r.nativeStringPerSecond)} | ${mps(r.jsBytesPerSecond)} | ${mps(r.nativeBytesPerSecond)} |`,
    );
  }
  console.log(
    `\nCrossover (string keys, as hashKey sees them): xxhash-addon is ahead from ${
      hashing.crossover === null ? 'no measured size' : `${hashing.crossover} bytes`
    }; NATIVE_HASH_MIN_LENGTH is ${NATIVE_HASH_MIN_LENGTH}.`,
  );
} else {
  console.log('\nxxhash-addon is not available (or TETHER_NATIVE_HASH=0): hash comparison skipped.');
}

const results = {
  generated: new Date().toISOString(),
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
  cpu: cpus()[0]?.model ?? 'unknown',
  keys: KEY_COUNT,
  balance,
  lookups,
  hash: { rows: hashing.rows, crossoverBytes: hashing.crossover, nativeHashMinLength: NATIVE_HASH_MIN_LENGTH },
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'hash-quality.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log('\nwrote native-bench/results/hash-quality.json');
