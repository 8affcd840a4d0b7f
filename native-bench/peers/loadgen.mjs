#!/usr/bin/env node
/**
 * Node load generator for the workloads that have no better native tool here, in a
 * process of its own (never the balancer's). Started by run.mjs with
 * child_process.fork; every command comes as an IPC message and its answer goes back
 * as { type: 'result', id, ok, result | error }.
 *
 *   { cmd: 'bulk', host, port, warmupMs, durationMs, streams? }
 *       `streams` connections (default 1) each writing 256 KiB chunks as fast as
 *       backpressure allows; MB/s (10^6 bytes) of them all over the measured window,
 *       from bytes handed to the kernel.
 *   { cmd: 'http', host, port, connections, warmupMs, durationMs, sessions? }
 *       keep-alive GETs, one in flight per connection (the wrk fallback): req/s, p99.
 *       With `sessions` (a list of ids) each GET carries `x-session: ID`, ID drawn
 *       at random from the list (the http-affinity workload without wrk).
 *   { cmd: 'connrate', host, port, concurrency, warmupMs, durationMs, sources, sessions? }
 *       connect, send one `Connection: close` GET, read the reply until the server
 *       closes, close; `concurrency` such loops. Each connection binds the next
 *       127.0.0.x of `sources`, so ports never run out. With `sessions`, each GET
 *       carries `x-session: ID` as in http (http-affinity's Connection: close rows
 *       without wrk).
 *   { cmd: 'sniConnrate', host, port, concurrency, warmupMs, durationMs, sources, names }
 *       the same with a TLS ClientHello (a random server name of `names`) in place of
 *       the GET; the upstream answers `ok` and closes once it has the hello.
 *   { cmd: 'idleOpen', host, port, count, sources, parallel }
 *       open `count` connections and keep them, sending nothing.
 *   { cmd: 'idleHttpOpen', host, port, count, sources, parallel, sessions }
 *       the same, but each connection first sends one keep-alive GET with
 *       `x-session: ID` (the i-th connection the i-th id, round the list) and is
 *       kept once its whole `ok` answer is back: { opened, errors }.
 *   { cmd: 'idleClose' }   close them: { closed, lost }, lost = those the other side
 *       had closed already.
 *   { cmd: 'wsEcho', host, port, clients, sources, bytes, warmupMs, durationMs }
 *       `clients` WebSockets (the `ws` client, no compression), the i-th bound to
 *       sources[i % sources.length]; once all are open, each sends a `bytes`-byte
 *       binary message, waits for its echo, sends the next. Round trips timed with
 *       performance.now(); those that start and end inside the measured window
 *       count: p50, p99, round trips/s.
 */
import net from 'node:net';
import tls from 'node:tls';
import WebSocket from 'ws';

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\n\r\n');
const REQUEST_CLOSE = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n');
const CONNECT_TIMEOUT_MS = 5000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

/**
 * Warm up for `warmupMs`, then measure for `durationMs`: `setMeasuring(true)` at the
 * start, `(false)` at the end. Resolves with the seconds measured.
 */
async function measuredWindow(warmupMs, durationMs, setMeasuring) {
  await sleep(warmupMs);
  setMeasuring(true);
  const t0 = now();
  await sleep(durationMs);
  setMeasuring(false);
  return (now() - t0) / 1000;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** One connection writing `chunk` as fast as backpressure allows, until stopped. */
function bulkStream(host, port, chunk, onFail) {
  const socket = net.connect({ host, port });
  const stream = { socket, running: true, connected: false };
  const pump = () => {
    while (stream.running && socket.write(chunk));
  };
  socket.setTimeout(CONNECT_TIMEOUT_MS, () => onFail(new Error('bulk: socket timeout')));
  socket.on('error', onFail);
  socket.on('close', () => stream.running && onFail(new Error('bulk: connection closed early')));
  socket.on('drain', pump);
  socket.on('connect', () => {
    stream.connected = true;
    pump();
  });
  return stream;
}

/** `streams` connections at once; MB/s of them all over the measured window. */
function bulk({ host, port, warmupMs, durationMs, streams = 1 }) {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    let settled = false;
    let t1;
    let t2;
    const all = [];
    const stopAll = () => {
      for (const s of all) {
        s.running = false;
        s.socket.destroy();
      }
    };
    const fail = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(t1);
      clearTimeout(t2);
      stopAll();
      reject(err);
    };
    for (let i = 0; i < streams; i++) all.push(bulkStream(host, port, chunk, fail));
    const sent = () => all.reduce((sum, s) => sum + s.socket.bytesWritten - s.socket.writableLength, 0);
    // Warm-up starts once every stream is connected.
    const waitConnected = setInterval(() => {
      if (settled) return clearInterval(waitConnected);
      if (!all.every((s) => s.connected)) return;
      clearInterval(waitConnected);
      t1 = setTimeout(() => {
        const markBytes = sent();
        const markTime = now();
        t2 = setTimeout(() => {
          const bytes = sent() - markBytes;
          const seconds = (now() - markTime) / 1000;
          settled = true;
          stopAll();
          resolve({ mbPerS: bytes / seconds / 1e6, bytes, seconds, streams });
        }, durationMs);
      }, warmupMs);
    }, 5);
  });
}

/** A GET carrying `x-session: id` (and `extra` header lines, each ending in CRLF). */
const sessionRequest = (id, extra = '') => Buffer.from(`GET / HTTP/1.1\r\nHost: bench\r\nx-session: ${id}\r\n${extra}\r\n`, 'latin1');

async function http({ host, port, connections, warmupMs, durationMs, sessions }) {
  const heads = sessions?.length ? sessions.map((id) => sessionRequest(id)) : [REQUEST];
  const nextRequest = () => heads[Math.floor(Math.random() * heads.length)];
  const latencies = [];
  let measuring = false;
  let running = true;
  let requests = 0;
  let errors = 0;
  const sockets = [];
  const MARK = '\r\n\r\nok';
  const one = () =>
    new Promise((resolve) => {
      const socket = net.connect({ host, port, noDelay: true });
      sockets.push(socket);
      let tail = '';
      let sentAt = 0;
      const send = () => {
        if (!running) return socket.destroy();
        sentAt = now();
        socket.write(nextRequest());
      };
      socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('timeout')));
      socket.on('connect', send);
      socket.on('data', (chunk) => {
        const text = tail + chunk.toString('latin1');
        let from = 0;
        let got = 0;
        for (;;) {
          const i = text.indexOf(MARK, from);
          if (i === -1) break;
          got++;
          from = i + MARK.length;
        }
        tail = text.slice(Math.max(from, text.length - MARK.length));
        if (got === 0) return;
        if (measuring) {
          requests += got;
          latencies.push(now() - sentAt);
        }
        send();
      });
      socket.on('error', () => {
        if (running) errors++;
      });
      socket.on('close', resolve);
    });
  const done = Array.from({ length: connections }, one);
  const seconds = await measuredWindow(warmupMs, durationMs, (on) => (measuring = on));
  running = false;
  for (const s of sockets) s.destroy();
  await Promise.race([Promise.all(done), sleep(2000)]);
  latencies.sort((a, b) => a - b);
  return {
    rps: requests / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
  };
}

async function connrate({ host, port, concurrency, warmupMs, durationMs, sources, sessions }) {
  const heads = sessions?.length ? sessions.map((id) => sessionRequest(id, 'Connection: close\r\n')) : [REQUEST_CLOSE];
  return connectLoop(
    { host, port, concurrency, warmupMs, durationMs, sources },
    () => heads[Math.floor(Math.random() * heads.length)],
    (got) => got.endsWith('\r\n\r\nok'),
  );
}

/**
 * Like connrate, but each connection sends a TLS ClientHello whose server name is
 * drawn at random from `names` (sNNNN.bench), and the upstream answers `ok` and
 * closes once it has read it (no handshake: what is measured is the balancer's
 * reading of the hello and its routing, not TLS).
 */
async function sniConnrate({ host, port, concurrency, warmupMs, durationMs, sources, names }) {
  const hellos = await clientHellos(names);
  return connectLoop(
    { host, port, concurrency, warmupMs, durationMs, sources },
    () => hellos[Math.floor(Math.random() * hellos.length)],
    (got) => got === 'ok',
  );
}

/**
 * One real ClientHello (Node's TLS client) captured for the first name, then the
 * name swapped in place for each of the others (all names have the same length, so
 * every length field stays right).
 */
async function clientHellos(names) {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const captured = new Promise((resolve) => {
    server.once('connection', (socket) => {
      let bytes = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        bytes = Buffer.concat([bytes, chunk]);
        if (bytes.length >= 5 && bytes.length >= 5 + bytes.readUInt16BE(3)) {
          resolve(bytes);
          socket.destroy();
        }
      });
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port: server.address().port, servername: names[0], rejectUnauthorized: false });
  client.on('error', () => {});
  const template = await captured;
  client.destroy();
  server.close();
  const at = template.indexOf(names[0], 0, 'latin1');
  if (at < 0) throw new Error('the captured ClientHello does not carry its server name');
  return names.map((name) => {
    if (name.length !== names[0].length) throw new Error('server names must all have the same length');
    const hello = Buffer.from(template);
    hello.write(name, at, 'latin1');
    return hello;
  });
}

/**
 * `concurrency` loops, each: connect (binding the next 127.0.0.x of `sources`, so
 * ports never run out), send `request()`, read until the server closes, close.
 * A connection counts when what it read passes `good`.
 */
async function connectLoop({ host, port, concurrency, warmupMs, durationMs, sources }, request, good) {
  const latencies = [];
  let measuring = false;
  let running = true;
  let completed = 0;
  let errors = 0;
  let next = 0;
  const loop = async () => {
    while (running) {
      const ok = await new Promise((resolve) => {
        const localAddress = sources[next++ % sources.length];
        const t0 = now();
        let got = '';
        let settled = false;
        const finish = (result) => {
          if (settled) return;
          settled = true;
          resolve(result);
        };
        const socket = net.connect({ host, port, localAddress, noDelay: true });
        socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('timeout')));
        socket.on('connect', () => socket.write(request()));
        socket.on('data', (chunk) => {
          if (got.length < 256) got += chunk.toString('latin1');
        });
        // The upstream closes first, so TIME_WAIT is its; we answer its FIN
        // (allowHalfOpen is off) and count on 'close'.
        socket.on('error', () => finish(false));
        socket.on('close', () => {
          const passed = good(got);
          if (passed && measuring) latencies.push(now() - t0);
          finish(passed);
        });
      });
      if (ok) {
        if (measuring) completed++;
      } else {
        if (running) errors++;
        await sleep(10); // no hot loop against a refusing port
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  const seconds = await measuredWindow(warmupMs, durationMs, (on) => (measuring = on));
  running = false;
  await Promise.race([Promise.all(loops), sleep(CONNECT_TIMEOUT_MS + 1000)]);
  latencies.sort((a, b) => a - b);
  return { cps: completed / seconds, p99Ms: percentile(latencies, 99), errors };
}

const idle = [];

/**
 * Open `count` connections, `parallel` at a time, the i-th bound to
 * sources[i % sources.length]; each is kept (in `idle`) once `ready(socket, i)`
 * resolves true, within CONNECT_TIMEOUT_MS of its connect call.
 */
async function openIdle({ host, port, count, sources, parallel }, ready) {
  let errors = 0;
  let started = 0;
  const openOne = () =>
    new Promise((resolve) => {
      const i = started++;
      const socket = net.connect({ host, port, localAddress: sources[i % sources.length] });
      const timer = setTimeout(() => socket.destroy(new Error('timeout')), CONNECT_TIMEOUT_MS);
      let settled = false;
      const settle = (kept) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (kept) idle.push(socket);
        else errors++;
        resolve();
      };
      socket.on('error', () => {});
      socket.once('connect', () => ready(socket, i).then((ok) => (ok && !socket.destroyed ? settle(true) : socket.destroy())));
      socket.once('close', () => settle(false));
    });
  const worker = async () => {
    while (started < count) await openOne();
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { opened: idle.length, errors };
}

function idleOpen(msg) {
  return openIdle(msg, async () => true);
}

/** Each connection sends one keep-alive GET and is kept once the answer is whole. */
function idleHttpOpen(msg) {
  const heads = msg.sessions.map((id) => sessionRequest(id));
  const MARK = '\r\n\r\nok';
  return openIdle(
    msg,
    (socket, i) =>
      new Promise((resolve) => {
        let got = '';
        const onData = (chunk) => {
          got += chunk.toString('latin1');
          if (!got.endsWith(MARK)) return;
          socket.off('data', onData);
          resolve(true);
        };
        socket.on('data', onData);
        socket.once('close', () => resolve(false));
        socket.write(heads[i % heads.length]);
      }),
  );
}

async function idleClose() {
  const n = idle.length;
  let lost = 0;
  for (const s of idle.splice(0)) {
    if (s.destroyed) lost++;
    s.destroy();
  }
  return { closed: n, lost };
}

/** A WebSocket that is open, or null when it failed or closed before opening. */
function openWs(url, localAddress) {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
    socket.on('error', () => {});
    socket.once('open', () => resolve(socket));
    socket.once('close', () => resolve(null));
  });
}

async function wsEcho({ host, port, clients, sources, bytes, warmupMs, durationMs }) {
  const payload = Buffer.alloc(bytes, 0x62);
  const url = `ws://${host}:${port}/`;
  const latencies = [];
  let measuring = false;
  let running = true;
  let errors = 0;
  let echoes = 0; // every round trip, warm-up included: what the balancer's CPU is divided by
  const opened = await Promise.all(Array.from({ length: clients }, (_, i) => openWs(url, sources[i % sources.length])));
  const sockets = opened.filter(Boolean);
  const closed = sockets.map((socket) => new Promise((resolve) => socket.once('close', resolve)));
  const closeAll = async () => {
    running = false;
    for (const socket of sockets) socket.terminate();
    await Promise.race([Promise.all(closed), sleep(3000)]);
  };
  if (sockets.length < clients) {
    await closeAll();
    throw new Error(`opened ${sockets.length} of ${clients} WebSockets`);
  }
  for (const socket of sockets) {
    let sentAt = 0;
    let inWindow = false; // this round trip started inside the measured window
    const send = () => {
      inWindow = measuring;
      sentAt = now();
      socket.send(payload);
    };
    socket.on('message', (data) => {
      const rtt = now() - sentAt;
      echoes++;
      if (data.length !== bytes) errors++;
      else if (inWindow && measuring) latencies.push(rtt);
      if (running) send();
    });
    socket.on('close', () => {
      if (running) errors++; // lost mid-run
    });
    send();
  }
  const seconds = await measuredWindow(warmupMs, durationMs, (on) => (measuring = on));
  await closeAll();
  if (latencies.length === 0) throw new Error('no echo came back in the measured window');
  const roundTrips = latencies.length;
  latencies.sort((a, b) => a - b);
  return {
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    roundTripsPerS: roundTrips / seconds,
    roundTrips,
    echoes,
    clients,
    errors,
  };
}

const COMMANDS = { bulk, http, connrate, sniConnrate, idleOpen, idleHttpOpen, idleClose, wsEcho };

process.on('message', async (msg) => {
  const fn = COMMANDS[msg?.cmd];
  try {
    if (!fn) throw new Error(`unknown command ${msg?.cmd}`);
    const result = await fn(msg);
    process.send({ type: 'result', id: msg.id, ok: true, result });
  } catch (err) {
    process.send({ type: 'result', id: msg.id, ok: false, error: String(err?.message ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => {});
process.send({ type: 'ready' });
