#!/usr/bin/env node
/**
 * TETHER_MAX_CONNECTIONS with TETHER_WORKERS: a burst at the limit. tether with 2
 * workers (`--workers=`) and one upstream that greets and holds each connection;
 * N connections (`--connections=`, default 2000) opened 16 at a time from distinct
 * loopback addresses and held, each timed from connect to the greeting. Rows: the
 * limit set to N (a worker that the kernel hands more than its share borrows room
 * from the others, workers/lease-ledger.ts) and a limit far above N (no lease runs
 * out). Per round: connections served and refused, how they landed on the workers,
 * how many a fixed split (limit / workers, rounded up, each) would have refused, and
 * the greeting time's p50 and p99. Rounds interleave the two rows.
 *
 *   node native-bench/lease-burst.mjs [--connections=2000] [--workers=2] [--rounds=3]
 *
 * Not part of npm run bench. Needs a built dist/. Writes results/lease-burst.json.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './local.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = resolve(here, '..', 'dist', 'cli.js');
const CONCURRENCY = 16;

const opts = { connections: 2000, workers: 2, rounds: 3 };
for (const arg of process.argv.slice(2)) {
  const [key, value] = arg.replace(/^--/, '').split('=');
  if (!(key in opts) || !/^\d+$/.test(value ?? '')) {
    console.error(`usage: node native-bench/lease-burst.mjs [--connections=N] [--workers=N] [--rounds=N] (not ${arg})`);
    process.exit(2);
  }
  opts[key] = Number(value);
}

const upstream = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.write('a\n');
});
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));

/** A fresh tether; resolves with its port and admin address once it accepts. */
function startTether(limit) {
  const child = spawn(process.execPath, [CLI], {
    env: {
      ...process.env,
      TETHER_UPSTREAMS: `a=127.0.0.1:${upstream.address().port}`,
      TETHER_WORKERS: String(opts.workers),
      TETHER_LISTEN: '127.0.0.1:0',
      TETHER_ADMIN: '127.0.0.1:0',
      TETHER_HEALTH: 'off',
      TETHER_ACCESS_LOG: 'off',
      TETHER_MAX_CONNECTIONS: String(limit),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout.setEncoding('utf8');
  return new Promise((resolve) => {
    let buffered = '';
    let port = null;
    let admin = null;
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = JSON.parse(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (line.msg === 'admin API listening') admin = line.address;
        if (line.msg === 'listening') port = Number(String(line.address).split(':').pop());
        if (port !== null && admin !== null) resolve({ child, port, admin });
      }
    });
  });
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

/** Connect from the i-th address; resolves at the greeting (served) or the close (refused). */
function connect(port, i) {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: `127.1.${Math.floor(i / 250)}.${1 + (i % 250)}` });
    let done = false;
    const finish = (served) => {
      if (done) return;
      done = true;
      resolve({ socket, served, us: Number(process.hrtime.bigint() - started) / 1000 });
    };
    socket.once('data', () => finish(true));
    socket.once('close', () => finish(false));
    socket.once('error', () => finish(false));
  });
}

async function round(limit) {
  const { child, port, admin } = await startTether(limit);
  await sleep(500);
  const results = new Array(opts.connections);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < opts.connections) {
        const i = next++;
        results[i] = await connect(port, i);
      }
    }),
  );
  const landed = (await getJson(`http://${admin}/workers`)).filter((w) => w.id > 0).map((w) => w.active);
  for (const r of results) r.socket.destroy();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const us = results.filter((r) => r.served).map((r) => r.us).sort((a, b) => a - b);
  const at = (p) => Math.round(us[Math.min(us.length - 1, Math.floor(p * us.length))]);
  const split = Math.ceil(limit / opts.workers);
  return {
    limit,
    served: us.length,
    refused: opts.connections - us.length,
    landed,
    fixedSplitWouldRefuse: landed.reduce((n, a) => n + Math.max(0, a - split), 0),
    p50us: at(0.5),
    p99us: at(0.99),
  };
}

const rows = [];
for (let r = 0; r < opts.rounds; r++) {
  for (const limit of [opts.connections, 100 * opts.connections]) {
    const row = await round(limit);
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
upstream.close();
writeFileSync(join(here, 'results', 'lease-burst.json'), JSON.stringify({ date: new Date().toISOString(), options: opts, rows }, null, 2) + '\n');
