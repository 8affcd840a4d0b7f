#!/usr/bin/env node
/**
 * What one new connection costs Node before any balancing: three servers that answer
 * one fixed HTTP response per connection and close it, under wrk with
 * `Connection: close` (50 connections, each request on a new one).
 *
 *   net-end      net.createServer, `socket.end(response)` (waits for the client's FIN)
 *   net-destroy  net.createServer, `socket.write(response, () => socket.destroy())`
 *   handle       the TCP handle under net.Socket (`process.binding('tcp_wrap')`):
 *                onconnection, onread, one WriteWrap, close; no Socket, no streams
 *
 * Reported: req/s and the server's user and system CPU µs per connection (from
 * /proc/PID/stat), medians of interleaved rounds. The gap between the net rows and
 * the handle row is what net.Socket itself costs per connection (objects, stream
 * state, the garbage they leave), the floor under tether's Connection: close,
 * new-connection and TLS-by-name rows (docs/performance.md, "What a connection costs Node").
 *
 *   node native-bench/accept-floor.mjs [--rounds=5] [--duration=5]
 */
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { CLK_TCK, statFields } from './background.mjs';
import { freePort } from './local.mjs';

const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok';

if (process.argv[2] === '--serve') serve(process.argv[3], Number(process.argv[4]));
else await main();

function serve(kind, port) {
  const body = Buffer.from(RESPONSE);
  if (kind === 'handle') return serveHandle(body, port);
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      if (kind === 'net-end') socket.end(body);
      else socket.write(body, () => socket.destroy());
    });
  });
  server.listen(port, '127.0.0.1', () => process.send?.('ready'));
}

function serveHandle(body, port) {
  const { TCP, constants } = process.binding('tcp_wrap');
  const { WriteWrap, streamBaseState, kReadBytesOrError, kLastWriteWasAsync } = process.binding('stream_wrap');
  const closed = () => {};
  function afterWrite() {
    this.handle.close(closed);
  }
  function onread() {
    if (streamBaseState[kReadBytesOrError] <= 0) return void this.close(closed);
    this.readStop();
    const req = new WriteWrap();
    req.handle = this;
    req.oncomplete = afterWrite;
    if (this.writeBuffer(req, body) !== 0) return void this.close(closed);
    if (streamBaseState[kLastWriteWasAsync] === 0) this.close(closed);
  }
  const server = new TCP(constants.SERVER);
  server.bind('127.0.0.1', port);
  server.onconnection = (err, handle) => {
    if (err) return;
    handle.onread = onread;
    handle.readStart();
  };
  server.listen(511);
  process.send?.('ready');
}

function option(name, fallback) {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : Number(arg.slice(name.length + 3));
}

/** The process's user and system CPU so far, in µs. */
function cpuUs(pid) {
  const fields = statFields(pid);
  return { user: (Number(fields[11]) * 1e6) / CLK_TCK, system: (Number(fields[12]) * 1e6) / CLK_TCK };
}

async function measure(kind, seconds) {
  const port = await freePort();
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve', kind, String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((resolve) => child.once('message', resolve));
  const before = cpuUs(child.pid);
  const out = execFileSync('wrk', ['-t1', '-c50', `-d${seconds}s`, '-H', 'Connection: close', `http://127.0.0.1:${port}/`], { encoding: 'latin1' });
  const after = cpuUs(child.pid);
  child.kill();
  const requests = Number(/(\d+) requests in/.exec(out)[1]);
  return {
    reqPerS: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]),
    userUs: (after.user - before.user) / requests,
    systemUs: (after.system - before.system) / requests,
  };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (err) {
    if (err.code === 'ENOENT') {
      console.error('accept-floor: wrk is not installed (apt-get install -y wrk)');
      process.exit(2);
    }
  }
  const rounds = option('rounds', 5);
  const seconds = option('duration', 5);
  const kinds = ['net-end', 'net-destroy', 'handle'];
  const runs = new Map(kinds.map((k) => [k, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const kind of kinds) {
      const run = await measure(kind, seconds);
      runs.get(kind).push(run);
      console.error(`round ${round} ${kind}: ${Math.round(run.reqPerS)} req/s, ${run.userUs.toFixed(1)} + ${run.systemUs.toFixed(1)} µs`);
    }
  }
  console.log(`| server | req/s | user µs/conn | system µs/conn | CPU µs/conn |`);
  console.log(`| --- | ---: | ---: | ---: | ---: |`);
  for (const kind of kinds) {
    const list = runs.get(kind);
    const user = median(list.map((r) => r.userUs));
    const system = median(list.map((r) => r.systemUs));
    const total = median(list.map((r) => r.userUs + r.systemUs));
    console.log(`| ${kind} | ${Math.round(median(list.map((r) => r.reqPerS))).toLocaleString('en-US')} | ${user.toFixed(1)} | ${system.toFixed(1)} | ${total.toFixed(1)} |`);
  }
  console.log(`\n${rounds} interleaved rounds × ${seconds} s; Node ${process.version}; medians.`);
}
