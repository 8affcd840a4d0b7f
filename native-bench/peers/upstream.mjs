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
 * sessionHttp: [ports], ws: [ports], sni: [ports], pids: [this and its siblings] }.
 * The parent may send { type: 'stats' } and gets
 * { type: 'stats', open, accepted, requests, bytes }.
 *
 * --procs=N (default 1): N-1 more processes of this script (--sibling) accept on the
 * same listening sockets (all but ws), given to them over IPC, so that one server's
 * connections are answered on up to N cores (a balancer routing by source address
 * sends all of one load generator's to one server); counts and records are answered
 * summed over them all.
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
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

function onSniConnection(socket) {
  track(socket);
  socket.text = '';
  socket.answered = false;
  socket.seen = sniSeen.get(socket.localPort);
  socket.on('data', onSniData);
}

function onSinkData(chunk) {
  stats.bytes += chunk.length;
}

function onEchoConnection(socket) {
  track(socket);
  socket.on('data', onSinkData);
  socket.pipe(socket);
}

function onHttpConnection(socket) {
  track(socket);
  socket.tail = '';
  socket.on('data', onHttpData);
}

function onSessionConnection(socket) {
  track(socket);
  socket.tail = '';
  socket.closing = false;
  socket.seen = sessions.get(socket.localPort);
  socket.on('data', onSessionData);
}

function onSinkConnection(socket) {
  track(socket);
  socket.on('data', onSinkData);
  socket.on('end', () => socket.end());
}

/**
 * The records the parent asks for by type ({ type: 'sessions' } or 'sni'): each
 * server's by port, `list` naming the keys seen (with how often) and `count` their sum.
 */
const RECORDS = {
  sessions: { byPort: sessions, list: 'ids', count: 'requests' },
  sni: { byPort: sniSeen, list: 'names', count: 'connections' },
};

/** Each kind of server (but ws): what serves its connections, and which records it keeps. */
const KINDS = {
  http: { onConnection: onHttpConnection, records: null, noDelay: true },
  sink: { onConnection: onSinkConnection, records: null, noDelay: false },
  echo: { onConnection: onEchoConnection, records: null, noDelay: true },
  'session-http': { onConnection: onSessionConnection, records: RECORDS.sessions, noDelay: true },
  sni: { onConnection: onSniConnection, records: RECORDS.sni, noDelay: true },
};

/** A server of `kind` now serves `port` in this process: its record starts empty. */
function serving(kind, port) {
  const records = KINDS[kind].records;
  if (records !== null) records.byPort.set(port, { [records.list]: new Map(), noKey: 0 });
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

/** This process's own records of `type`, answered and then started afresh. */
function ownRecords(type) {
  const { byPort: records, list, count } = RECORDS[type];
  const byPort = {};
  for (const [port, seen] of records) {
    let n = 0;
    for (const times of seen[list].values()) n += times;
    byPort[port] = { [list]: [...seen[list].keys()], [count]: n, noKey: seen.noKey };
    seen[list].clear();
    seen.noKey = 0;
  }
  return { type, byPort };
}

// The parent going away (crash, SIGKILL) closes the IPC channel: do not linger.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => {}); // the parent handles ^C and stops us itself

if (args.sibling === 1) {
  // A sibling (--procs): serves the listening sockets the first process sends it, and
  // answers it with its own counts and records.
  process.on('message', (msg, server) => {
    if (msg?.type === 'serve') {
      serving(msg.kind, msg.port);
      server.on('connection', KINDS[msg.kind].onConnection);
      process.send({ type: 'serving', port: msg.port });
    } else if (msg?.type === 'stats') process.send({ type: 'stats', ...stats });
    else if (Object.hasOwn(RECORDS, msg?.type ?? '')) process.send(ownRecords(msg.type));
  });
  process.send({ type: 'ready' });
} else {
  await serveFirst();
}

async function serveFirst() {
  const ports = { http: [], sink: [], echo: [], 'session-http': [], sni: [] };
  const servers = [];
  for (const [name, kind] of Object.entries(KINDS)) {
    for (let i = 0; i < (args[name] ?? (name === 'http' ? 3 : 0)); i++) {
      const server = net.createServer({ noDelay: kind.noDelay }, kind.onConnection);
      const port = await listen(server);
      serving(name, port);
      ports[name].push(port);
      servers.push({ kind: name, port, server });
    }
  }
  const ws = [];
  for (let i = 0; i < (args.ws ?? 0); i++) ws.push(await wsServer());

  // --procs=N: N-1 more processes accept on the same listening sockets (not ws).
  const siblings = [];
  for (let i = 1; i < (args.procs ?? 1); i++) siblings.push(await forkSibling());
  for (const sibling of siblings) {
    for (const { kind, port, server } of servers) {
      sibling.send({ type: 'serve', kind, port }, server);
      await sibling.next('serving');
    }
  }

  process.on('message', async (msg) => {
    if (msg?.type === 'stats') {
      const sum = { ...stats };
      for (const answer of await Promise.all(siblings.map((s) => s.ask('stats')))) {
        for (const key of Object.keys(stats)) sum[key] += answer[key];
      }
      process.send({ type: 'stats', ...sum });
    }
    if (Object.hasOwn(RECORDS, msg?.type ?? '')) {
      const { list, count } = RECORDS[msg.type];
      const merged = ownRecords(msg.type);
      for (const answer of await Promise.all(siblings.map((s) => s.ask(msg.type)))) {
        for (const [port, seen] of Object.entries(answer.byPort)) {
          const into = merged.byPort[port];
          into[list] = [...new Set([...into[list], ...seen[list]])];
          into[count] += seen[count];
          into.noKey += seen.noKey;
        }
      }
      process.send(merged);
    }
  });
  process.send({
    type: 'ready',
    http: ports.http,
    sink: ports.sink,
    echo: ports.echo,
    sessionHttp: ports['session-http'],
    ws,
    sni: ports.sni,
    pids: [process.pid, ...siblings.map((s) => s.pid)],
  });
}

/** Another process of this script in the sibling role; `next(type)` awaits its next message of that type. */
function forkSibling() {
  const child = fork(fileURLToPath(import.meta.url), ['--sibling'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map();
  child.on('message', (msg) => {
    const resolve = waiting.get(msg?.type);
    if (resolve === undefined) return;
    waiting.delete(msg.type);
    resolve(msg);
  });
  child.on('exit', () => process.exit(1));
  const next = (type) => new Promise((resolve) => waiting.set(type, resolve));
  const sibling = {
    pid: child.pid,
    send: (msg, handle) => child.send(msg, handle),
    next,
    ask(type) {
      const answer = next(type);
      child.send({ type });
      return answer;
    },
  };
  return next('ready').then(() => sibling);
}
