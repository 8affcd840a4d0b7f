import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { Server as IoServer } from 'socket.io';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/clients.js';
import { Cleanups, keyHashedAwayFrom } from '../helpers/http.js';
import { listenLoopback } from '../helpers/listen.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';

/**
 * Socket.IO through http mode: the Engine.IO handshake (a long-poll GET without a
 * session id) carries no key, so power of two choices picks a server, which answers
 * with the session id in its body and in the `io` cookie. Every later request, polls
 * and the WebSocket upgrade alike, names the session in `?sid=`, and only the server
 * that made the session knows it: the requests must follow the pin learned from the
 * `Set-Cookie: io=...` of the handshake, whatever the hash of the sid says.
 */

const CLIENTS = 20;
const EMITS = 5;
const NAMES = ['io-a', 'io-b', 'io-c'] as const;

interface IoUpstream {
  readonly name: string;
  readonly port: number;
  /** Engine.IO sessions this server made. */
  readonly sessions: Set<string>;
  /** Requests refused with 400 "Session ID unknown" (a sid made elsewhere). */
  unknownSid: number;
  close(): Promise<void>;
}

interface Ack {
  readonly server: string;
  readonly n: number;
}

const cleanups = new Cleanups();

afterEach(() => cleanups.runAll());

async function startIoUpstream(name: string, admin: () => string): Promise<IoUpstream> {
  const server = http.createServer();
  const io = new IoServer(server, { cookie: { name: 'io', path: '/', httpOnly: true, sameSite: 'lax' } });
  const port = await listenLoopback(server);
  const upstream: IoUpstream = {
    name,
    port,
    sessions: new Set(),
    unknownSid: 0,
    close: async () => {
      server.closeAllConnections();
      await io.close();
    },
  };
  io.engine.generateId = async () => {
    const sid = await keyHashedAwayFrom(name, admin, () => randomBytes(15).toString('base64url'));
    upstream.sessions.add(sid);
    return sid;
  };
  io.engine.on('connection_error', (err: { code: number; message: string }) => {
    if (err.message === 'Session ID unknown') upstream.unknownSid++;
  });
  io.on('connection', (socket) => {
    socket.on('work', (n: number, ack: (answer: Ack) => void) => ack({ server: name, n }));
  });
  return upstream;
}

async function startRig(learn: boolean): Promise<{ upstreams: IoUpstream[]; tether: RunningTether }> {
  let adminBase = '';
  const upstreams: IoUpstream[] = [];
  for (const name of NAMES) {
    const upstream = await startIoUpstream(name, () => adminBase);
    upstreams.push(upstream);
    cleanups.register(() => upstream.close());
  }
  const env: Record<string, string> = {
    TETHER_MODE: 'http',
    TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=127.0.0.1:${u.port}`).join(','),
    TETHER_KEY: 'query:sid,cookie:io',
    // No health checks: p2c then sees only this test's connections (see below).
    TETHER_HEALTH: 'off',
  };
  if (learn) env.TETHER_LEARN = 'set-cookie:io';
  const tether = await startTether(env);
  cleanups.register(() => tether.close());
  adminBase = tether.admin;
  return { upstreams, tether };
}

/** A socket.io-client with its defaults: long-polling first, then upgrade to WebSocket. */
function connectClient(port: number): ClientSocket {
  const socket = ioClient(`http://127.0.0.1:${port}`, { forceNew: true });
  cleanups.register(async () => {
    socket.disconnect();
  });
  return socket;
}

function connected(socket: ClientSocket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    const timer = setTimeout(() => reject(new Error(`not connected within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

interface ClientRun {
  readonly socket: ClientSocket;
  /** Engine.IO session id. */
  readonly sid: string;
  readonly acks: Ack[];
}

/** Connect, do EMITS acknowledged emits, and wait for the WebSocket upgrade. */
async function runClient(port: number): Promise<ClientRun> {
  const socket = connectClient(port);
  await connected(socket, 15_000);
  const sid = socket.io.engine.id;
  const acks: Ack[] = [];
  for (let n = 0; n < EMITS; n++) acks.push((await socket.timeout(10_000).emitWithAck('work', n)) as Ack);
  await waitFor(() => socket.io.engine.transport.name === 'websocket', 15_000, 'the upgrade to WebSocket');
  return { socket, sid, acks };
}

describe('http mode with Socket.IO (socket.io + socket.io-client)', () => {
  it('learns each session from the io cookie: 20 clients do 5 acknowledged emits each, all from one server, and end on WebSocket', async () => {
    const { upstreams, tether } = await startRig(true);
    // One client first, connected and upgraded, then a second alone: at the second
    // handshake the first client's server holds its WebSocket (one active connection)
    // and the other two hold nothing, so p2c, which always draws two distinct servers
    // and takes the less loaded, cannot pick the first one. At least two servers are
    // used, deterministically. The other 18 then come all at once.
    const first = await runClient(tether.port);
    const second = await runClient(tether.port);
    const rest = await Promise.all(Array.from({ length: CLIENTS - 2 }, () => runClient(tether.port)));
    const runs = [first, second, ...rest];

    const serverOf = new Map<ClientRun, string>();
    for (const run of runs) {
      expect(run.acks.map((a) => a.n)).toEqual([0, 1, 2, 3, 4]);
      const servers = new Set(run.acks.map((a) => a.server));
      expect([...servers]).toHaveLength(1);
      const server = run.acks[0]!.server;
      serverOf.set(run, server);
      // The server that answered is the one that made the session.
      expect(upstreams.find((u) => u.name === server)!.sessions.has(run.sid)).toBe(true);
      expect(run.socket.io.engine.transport.name).toBe('websocket');
      expect(run.socket.connected).toBe(true);
    }
    expect(serverOf.get(second)).not.toBe(serverOf.get(first));
    expect(new Set(serverOf.values()).size).toBeGreaterThan(1);
    // No request ever reached a server that did not know its session.
    expect(upstreams.reduce((n, u) => n + u.unknownSid, 0)).toBe(0);

    // Each client's WebSocket is an upgraded connection tether routed by the pin of
    // its sid (which hashes elsewhere: the ids are chosen so).
    const upgraded = [...tether.tether.runtime()!.listener.sessions];
    expect(upgraded).toHaveLength(CLIENTS);
    for (const run of runs) {
      const session = upgraded.find((s) => s.key === run.sid);
      expect(session).toBeDefined();
      expect({ via: session!.via, keySource: session!.keySource, upstream: session!.upstream?.name }).toEqual({
        via: 'learned',
        keySource: 'query',
        upstream: serverOf.get(run),
      });
      const route = (await adminCall(tether.admin, 'GET', `/route?key=${encodeURIComponent(run.sid)}`)).body as { upstream: string; via: string };
      expect(route).toMatchObject({ upstream: serverOf.get(run), via: 'learned' });
    }
  });

  it('has teeth: with TETHER_LEARN unset, requests after the handshake reach a server that answers 400 "Session ID unknown", and no client connects', async () => {
    // Each sid is chosen so that its hash names another server than the one whose
    // handshake made it (see keyHashedAwayFrom), so without a learned pin the first
    // request after every handshake (the poll and the POST carrying Socket.IO's
    // CONNECT packet) reaches a stranger, which answers 400 "Session ID unknown"; the
    // client never connects and reports connect_error (then retries, failing alike).
    // Deterministic: all 20 fail.
    //
    // With Engine.IO's random ids instead, a client survives only when the hash of its
    // sid happens to name its handshake server, about 1/3 of the time (three equal
    // ring shares), so all 20 surviving would have a probability of about
    // (1/3)^20 ~ 2.9e-10: "at least one fails" would hold nearly always, this always.
    const { upstreams, tether } = await startRig(false);
    const sockets = Array.from({ length: CLIENTS }, () => connectClient(tether.port));
    const failed = new Set<ClientSocket>();
    let connects = 0;
    for (const socket of sockets) {
      socket.on('connect_error', () => failed.add(socket));
      socket.on('connect', () => connects++);
    }
    await waitFor(() => failed.size === CLIENTS, 20_000, 'every client to fail to connect', 50);
    expect(connects).toBe(0);
    for (const socket of sockets) expect(socket.connected).toBe(false);
    // Every handshake made a session on one server, and its next request hit another.
    expect(upstreams.reduce((n, u) => n + u.sessions.size, 0)).toBeGreaterThanOrEqual(CLIENTS);
    expect(upstreams.reduce((n, u) => n + u.unknownSid, 0)).toBeGreaterThanOrEqual(CLIENTS);
  });
});
