#!/usr/bin/env node
/**
 * The upstreams behind every balancer in the benchmark, in one process of their own
 * (never the balancer's, never the load generator's). Started by run.mjs with
 * child_process.fork:
 *
 *   node upstream.mjs --http=3 --sink=3 [--session-http=3] [--ws=3] [--sni=3]
 *
 * - http: a minimal HTTP/1.1 responder on raw `net` (no node:http, so it is cheap
 *   and has no timeouts of its own). Every request head (ended by CRLFCRLF) gets
 *   `200 ok`; connections stay open (keep-alive) unless the request says
 *   `Connection: close`, when the upstream answers and closes first, so TIME_WAIT
 *   stays on the server side and load generators do not run out of ports. Also the
 *   upstream for idle connections: it sends nothing until asked.
 * - sink: reads and discards everything (bulk throughput without iperf3).
 * - echo: writes back everything it reads (soak.mjs).
 * - ws: a `ws` WebSocketServer that sends every message back as it came (binary
 *   or text), no compression (the ws workload: echo round trips through a balancer,
 *   which relays the upgraded connection as plain TCP).
 * - session-http (the http-affinity workload): like http, and each response echoes
 *   the request's `x-session` header, so a balancer can learn a pin from it. Each
 *   server records the session ids it saw; { type: 'sessions' } answers
 *   { type: 'sessions', byPort: { port: { ids: [...], requests, noKey } } } and
 *   starts a fresh record, so every measurement checks its own affinity. A request
  with `Connection: close` is answered with it and the connection closed, as the
  http responder does (http-affinity's Connection: close rows, direct).
 *
 * - sni (the sni-affinity workload): reads a TLS ClientHello's first record, records
 *   the server name in it (sNNNN.bench), answers `ok` and closes (no handshake).
 *   { type: 'sni' } answers { type: 'sni', byPort: { port: { names: [...],
 *   connections, noKey } } } and starts a fresh record.
 *
 * Every server listens on 127.0.0.1 port 0; the ports go back to the parent over
 * IPC as { type: 'ready', http: [ports], sink: [ports], echo: [ports],
 * sessionHttp: [ports], ws: [ports] }. The parent may send { type: 'stats' } and gets
 * { type: 'stats', open, accepted, requests, bytes }.
 */
import net from 'node:net';
import { WebSocketServer } from 'ws';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, Number(v ?? 1)];
  }),
);

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok');
const RESPONSE_CLOSE = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
);
const CLOSE_RE = /\r\nconnection:[ \t]*close/i;

const stats = { open: 0, accepted: 0, requests: 0, bytes: 0 };

function track(socket) {
  stats.open++;
  stats.accepted++;
  socket.setNoDelay(true);
  socket.on('error', () => {});
  socket.on('close', () => stats.open--);
}

// Count request heads across chunk boundaries: `tail` keeps the last 3 bytes so a
// CRLFCRLF split over two reads is still found.
function onHttpData(chunk) {
  stats.bytes += chunk.length;
  const text = this.tail + chunk.toString('latin1');
  let heads = 0;
  let from = 0;
  let close = false;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', from);
    if (end === -1) break;
    heads++;
    if (CLOSE_RE.test(text.slice(from, end + 2))) close = true;
    from = end + 4;
  }
  this.tail = text.length - from > 8192 ? '' : text.slice(Math.max(from, text.length - 3));
  if (heads === 0) return;
  stats.requests += heads;
  if (close) {
    for (let i = 1; i < heads; i++) this.write(RESPONSE);
    this.end(RESPONSE_CLOSE);
    return;
  }
  if (heads === 1) this.write(RESPONSE);
  else this.write(Buffer.concat(Array(heads).fill(RESPONSE)));
}

const SESSION_RE = /\r\nx-session:[ \t]*([^\r\n]*?)[ \t]*\r\n/i;
const ECHO_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nx-session: ';
/** port -> { ids: Map<id, requests>, noKey } for the current measurement. */
const sessions = new Map();

// One response per request head, each echoing that head's x-session. Heads that
// carry none are counted (a balancer that dropped the header shows up here). A head
// with `Connection: close` is answered with it, and the upstream closes first.
function onSessionData(chunk) {
  stats.bytes += chunk.length;
  if (this.closing) return;
  const text = this.tail + chunk.toString('latin1');
  const seen = this.seen;
  let out = '';
  let from = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', from);
    if (end === -1) break;
    const head = text.slice(from, end + 2);
    const m = SESSION_RE.exec(head);
    const close = CLOSE_RE.test(head) ? 'Connection: close\r\n' : '';
    stats.requests++;
    if (m === null) {
      seen.noKey++;
      out += `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n${close}\r\nok`;
    } else {
      seen.ids.set(m[1], (seen.ids.get(m[1]) ?? 0) + 1);
      out += `${ECHO_HEAD}${m[1]}\r\n${close}\r\nok`;
    }
    from = end + 4;
    if (close) {
      this.closing = true;
      this.end(out, 'latin1');
      return;
    }
  }
  this.tail = text.length - from > 8192 ? '' : text.slice(Math.max(from, text.length - 3));
  if (out !== '') this.write(out, 'latin1');
}

const SNI_NAME_RE = /s\d{4}\.bench/;
/** port -> { names: Map<name, connections>, noKey } for the current measurement. */
const sniSeen = new Map();

function onSniData(chunk) {
  stats.bytes += chunk.length;
  if (this.answered) return;
  this.text += chunk.toString('latin1');
  // The first record: a 5-byte header, then as many bytes as its length says.
  if (this.text.length < 5 || this.text.length < 5 + ((this.text.charCodeAt(3) << 8) | this.text.charCodeAt(4))) return;
  this.answered = true;
  stats.requests++;
  const m = SNI_NAME_RE.exec(this.text);
  if (m === null) this.seen.noKey++;
  else this.seen.names.set(m[0], (this.seen.names.get(m[0]) ?? 0) + 1);
  this.end('ok');
}

function sniServer() {
  return net.createServer({ noDelay: true }, (socket) => {
    track(socket);
    socket.text = '';
    socket.answered = false;
    socket.seen = sniSeen.get(socket.localPort);
    socket.on('data', onSniData);
  });
}

function onSinkData(chunk) {
  stats.bytes += chunk.length;
}

function echoServer() {
  return net.createServer({ noDelay: true }, (socket) => {
    track(socket);
    socket.on('data', onSinkData);
    socket.pipe(socket);
  });
}

function httpServer() {
  return net.createServer({ noDelay: true }, (socket) => {
    track(socket);
    socket.tail = '';
    socket.on('data', onHttpData);
  });
}

function sessionServer() {
  return net.createServer({ noDelay: true }, (socket) => {
    track(socket);
    socket.tail = '';
    socket.closing = false;
    socket.seen = sessions.get(socket.localPort);
    socket.on('data', onSessionData);
  });
}

function sinkServer() {
  return net.createServer((socket) => {
    track(socket);
    socket.on('data', onSinkData);
    socket.on('end', () => socket.end());
  });
}

function onWsMessage(data, isBinary) {
  stats.requests++;
  stats.bytes += data.length;
  this.send(data, { binary: isBinary });
}

/** Listens on 127.0.0.1 port 0; resolves to the port. */
function wsServer() {
  return new Promise((resolve, reject) => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, backlog: 4096, perMessageDeflate: false });
    server.once('error', reject);
    server.once('listening', () => resolve(server.address().port));
    server.on('connection', (socket, req) => {
      stats.open++;
      stats.accepted++;
      req.socket.setNoDelay(true);
      socket.on('error', () => {});
      socket.on('close', () => stats.open--);
      socket.on('message', onWsMessage);
    });
  });
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => resolve(server.address().port));
  });
}

const http = [];
const sink = [];
const echo = [];
for (let i = 0; i < (args.http ?? 3); i++) http.push(await listen(httpServer()));
for (let i = 0; i < (args.sink ?? 0); i++) sink.push(await listen(sinkServer()));
for (let i = 0; i < (args.echo ?? 0); i++) echo.push(await listen(echoServer()));
const sessionHttp = [];
for (let i = 0; i < (args['session-http'] ?? 0); i++) {
  const port = await listen(sessionServer());
  sessionHttp.push(port);
  sessions.set(port, { ids: new Map(), noKey: 0 });
}

const ws = [];
for (let i = 0; i < (args.ws ?? 0); i++) ws.push(await wsServer());
const sni = [];
for (let i = 0; i < (args.sni ?? 0); i++) {
  const port = await listen(sniServer());
  sni.push(port);
  sniSeen.set(port, { names: new Map(), noKey: 0 });
}

process.on('message', (msg) => {
  if (msg?.type === 'stats') process.send({ type: 'stats', ...stats });
  if (msg?.type === 'sessions') {
    const byPort = {};
    for (const [port, seen] of sessions) {
      let requests = 0;
      for (const n of seen.ids.values()) requests += n;
      byPort[port] = { ids: [...seen.ids.keys()], requests, noKey: seen.noKey };
      seen.ids.clear();
      seen.noKey = 0;
    }
    process.send({ type: 'sessions', byPort });
  }
  if (msg?.type === 'sni') {
    const byPort = {};
    for (const [port, seen] of sniSeen) {
      let connections = 0;
      for (const n of seen.names.values()) connections += n;
      byPort[port] = { names: [...seen.names.keys()], connections, noKey: seen.noKey };
      seen.names.clear();
      seen.noKey = 0;
    }
    process.send({ type: 'sni', byPort });
  }
});
// The parent going away (crash, SIGKILL) closes the IPC channel: do not linger.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => {}); // the parent handles ^C and stops us itself
process.send({ type: 'ready', http, sink, echo, sessionHttp, ws, sni });
