import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { clientAddress, closed, connectAndGreet, waitFor } from '../helpers/clients.js';
import { CLI, adminCall, spawnTether, spawnedAddresses, watchTether, type TetherProcess } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

let proc: TetherProcess | null = null;
let upstreams: TestUpstream[] = [];
let wsServer: WebSocketServer | null = null;

afterEach(async () => {
  proc?.kill('SIGKILL');
  proc = null;
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
  if (wsServer) {
    for (const c of wsServer.clients) c.terminate();
    await new Promise<void>((resolve) => wsServer!.close(() => resolve()));
    wsServer = null;
  }
});

function echo(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (chunk: Buffer): void => {
      got += chunk.toString();
      if (got.length >= text.length) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before the echo')));
    socket.write(text);
  });
}

describe('SIGTERM', () => {
  it('refuses new connections at once, lets open ones finish, then exits 0', async () => {
    upstreams = await startUpstreams(['a']);
    proc = spawnTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_DRAIN_TIMEOUT_MS: '20000', TETHER_HEALTH: 'off' });
    const { port } = await spawnedAddresses(proc);
    const open = await connectAndGreet(port, '127.0.0.2');
    expect(open.upstream).toBe('a');
    const signalledAt = Date.now();
    proc.kill('SIGTERM');
    await proc.waitForLog((l) => l.msg === 'shutting down: draining connections');
    // New connections are refused within one second.
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port });
          s.once('error', () => resolve(true));
          s.once('connect', () => (s.destroy(), resolve(false)));
        }),
      1_000,
      'new connections to be refused',
    );
    expect(Date.now() - signalledAt).toBeLessThan(1_500);
    // The open connection still works.
    expect(await echo(open.socket, 'still here')).toBe('still here');
    open.socket.end();
    expect(await proc.exited).toBe(0);
  });

  it('closes what is still open at TETHER_DRAIN_TIMEOUT_MS and exits 0', async () => {
    upstreams = await startUpstreams(['a']);
    proc = spawnTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_DRAIN_TIMEOUT_MS: '500', TETHER_HEALTH: 'off' });
    const { port } = await spawnedAddresses(proc);
    const open = await connectAndGreet(port, '127.0.0.2');
    const started = Date.now();
    proc.kill('SIGTERM');
    await closed(open.socket);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(await proc.exited).toBe(0);
  });
});

describe('run the production way (README, "In production")', () => {
  it('a start script that execs node on the bin: SIGTERM drains, exits 0, and leaves no process and no port behind', async () => {
    upstreams = await startUpstreams(['a']);
    // What a supervisor runs: a script whose last line is `exec node .../dist/cli.js`.
    const dir = mkdtempSync(join(tmpdir(), 'tether-prod-'));
    const script = join(dir, 'start.sh');
    writeFileSync(script, `#!/bin/sh\nexec node ${JSON.stringify(CLI)}\n`, { mode: 0o755 });
    // Its own process group, as under a supervisor: afterwards the group must be empty.
    const child = spawn(script, [], {
      env: { PATH: process.env.PATH ?? '', TETHER_LOG_LEVEL: 'info', TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_HEALTH: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    proc = watchTether(child);
    const { port, admin } = await spawnedAddresses(proc);
    // exec: the pid the supervisor signals is tether's own node, not a shell in front of it.
    // (argv, not /proc/PID/comm: Node 24 names its main thread MainThread.)
    expect(readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').slice(0, 2)).toEqual(['node', CLI]);
    const open = await connectAndGreet(port, '127.0.0.2');
    expect(open.upstream).toBe('a');

    proc.kill('SIGTERM');
    await waitFor(() => refused(port), 1_000, 'new connections to be refused');
    expect(await echo(open.socket, 'draining')).toBe('draining');
    open.socket.end();
    expect(await proc.exited).toBe(0);

    // Nothing left in its process group, and its ports are free.
    expect(() => process.kill(-proc!.pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    expect(await refused(port)).toBe(true);
    await expect(fetch(`${admin}/healthz`)).rejects.toThrow();
  });
});

describe('SIGTERM with TETHER_DRAIN_DELAY_MS', () => {
  it('answers /readyz 503 at once, accepts new connections for the delay, then refuses them, drains the open ones and exits 0', async () => {
    upstreams = await startUpstreams(['a']);
    const delayMs = 2_000;
    proc = spawnTether({
      TETHER_UPSTREAMS: upstreamList(upstreams),
      TETHER_LISTEN: '127.0.0.1:0',
      TETHER_ADMIN: '127.0.0.1:0',
      TETHER_DRAIN_DELAY_MS: String(delayMs),
      TETHER_DRAIN_TIMEOUT_MS: '20000',
      TETHER_HEALTH: 'off',
    });
    const { port, admin } = await spawnedAddresses(proc);
    const readyz = async (): Promise<number> => (await fetch(`${admin}/readyz`)).status;
    expect(await readyz()).toBe(200);
    const before = await connectAndGreet(port, '127.0.0.2');
    expect(before.upstream).toBe('a');

    const signalledAt = Date.now();
    proc.kill('SIGTERM');
    await waitFor(async () => (await readyz()) === 503, 500, '/readyz to answer 503');
    const notReadyAfter = Date.now() - signalledAt;

    // Through the delay, new connections are accepted and relayed.
    const during: net.Socket[] = [];
    while (Date.now() - signalledAt < delayMs - 300) {
      const g = await connectAndGreet(port, '127.0.0.3');
      expect(g.upstream, `a connection ${Date.now() - signalledAt} ms after SIGTERM`).toBe('a');
      during.push(g.socket);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(during.length).toBeGreaterThanOrEqual(5);
    expect(await readyz()).toBe(503);

    // Then refused, soon after the delay.
    await waitFor(() => refused(port), delayMs + 1_500, 'new connections to be refused');
    const refusedAfter = Date.now() - signalledAt;
    expect(refusedAfter).toBeGreaterThanOrEqual(delayMs - 300);
    expect(refusedAfter).toBeLessThan(delayMs + 1_000);

    // The open ones, from before the signal and from the delay, still relay: drained, not cut.
    for (const socket of [before.socket, ...during]) expect(await echo(socket, 'still here')).toBe('still here');
    for (const socket of [before.socket, ...during]) socket.end();
    expect(await proc.exited).toBe(0);
    console.log(`SIGTERM, drain delay ${delayMs} ms: /readyz 503 after ${notReadyAfter} ms; ${during.length} connections accepted during the delay; refused after ${refusedAfter} ms`);
  });

  it('a second signal during the delay closes at once and exits 0', async () => {
    upstreams = await startUpstreams(['a']);
    proc = spawnTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_DRAIN_DELAY_MS: '60000', TETHER_HEALTH: 'off' });
    const { port } = await spawnedAddresses(proc);
    const open = await connectAndGreet(port, '127.0.0.2');
    proc.kill('SIGTERM');
    await proc.waitForLog((l) => l.msg === 'shutting down: not ready; accepting until the drain delay ends');
    const secondAt = Date.now();
    proc.kill('SIGINT');
    await closed(open.socket);
    expect(await proc.exited).toBe(0);
    expect(Date.now() - secondAt).toBeLessThan(3_000);
  });
});

/** A WebSocket upstream that echoes every message. */
async function startWsEcho(): Promise<number> {
  wsServer = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wsServer.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => wsServer!.once('listening', () => resolve()));
  return (wsServer.address() as net.AddressInfo).port;
}

/** A WebSocket client through tether that sends a numbered message every 50 ms and checks each echo. */
interface Chatter {
  readonly ws: WebSocket;
  echoes: number;
  wrong: number;
  closedAt: number;
  closeCode: number;
}

async function chatter(port: number, localAddress: string): Promise<Chatter> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { localAddress });
  const c: Chatter = { ws, echoes: 0, wrong: 0, closedAt: 0, closeCode: 0 };
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  let sent = 0;
  const timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(`m${sent++}`), 50);
  ws.on('message', (data) => {
    if (String(data) === `m${c.echoes}`) c.echoes++;
    else c.wrong++;
  });
  ws.once('close', (code) => {
    clearInterval(timer);
    c.closedAt = Date.now();
    c.closeCode = code;
  });
  return c;
}

/** Whether a new connection is refused (the listener closed) rather than accepted. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('error', () => resolve(true));
    s.once('connect', () => (s.destroy(), resolve(false)));
  });
}

describe('SIGTERM with WebSocket clients (tcp mode)', () => {
  it('refuses new connections within 1 s, keeps open WebSockets echoing until TETHER_DRAIN_TIMEOUT_MS, then closes them and exits 0', async () => {
    const upstreamPort = await startWsEcho();
    const drainMs = 3_000;
    proc = spawnTether({ TETHER_UPSTREAMS: `ws=127.0.0.1:${upstreamPort}`, TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_DRAIN_TIMEOUT_MS: String(drainMs), TETHER_HEALTH: 'off' });
    const { port } = await spawnedAddresses(proc);
    const chatters = await Promise.all(Array.from({ length: 20 }, (_, i) => chatter(port, clientAddress(i))));
    await waitFor(() => chatters.every((c) => c.echoes >= 3), 10_000, 'every WebSocket to echo');

    const signalledAt = Date.now();
    proc.kill('SIGTERM');
    await waitFor(() => refused(port), 1_000, 'new connections to be refused');
    const refusedAfter = Date.now() - signalledAt;
    // A new WebSocket fails too.
    const late = new WebSocket(`ws://127.0.0.1:${port}/`);
    await new Promise<void>((resolve) => late.once('error', () => resolve()));

    // Well into the drain every WebSocket is still open and echoing.
    const atSignal = chatters.map((c) => c.echoes);
    await waitFor(() => Date.now() - signalledAt >= drainMs - 1_000, drainMs, 'most of the drain to pass');
    chatters.forEach((c, i) => {
      expect(c.closedAt).toBe(0);
      expect(c.echoes).toBeGreaterThanOrEqual(atSignal[i]! + 5);
    });

    // At the deadline they are closed, and the process exits 0.
    const code = await proc.exited;
    const exitedAfter = Date.now() - signalledAt;
    await waitFor(() => chatters.every((c) => c.closedAt > 0), 5_000, 'every WebSocket to be closed');
    for (const c of chatters) {
      expect(c.closedAt - signalledAt).toBeGreaterThanOrEqual(drainMs - 200);
      expect(c.wrong).toBe(0);
    }
    expect(code).toBe(0);
    expect(exitedAfter).toBeLessThan(drainMs + 5_000);
    console.log(`SIGTERM, 20 WebSockets: refused new connections after ${refusedAfter} ms; closed the WebSockets at ${Math.min(...chatters.map((c) => c.closedAt - signalledAt))} ms (drain ${drainMs} ms); exited 0 after ${exitedAfter} ms`);
  });

  it('exits 0 as soon as the last WebSocket finishes, long before the deadline', async () => {
    const upstreamPort = await startWsEcho();
    const drainMs = 30_000;
    proc = spawnTether({ TETHER_UPSTREAMS: `ws=127.0.0.1:${upstreamPort}`, TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_DRAIN_TIMEOUT_MS: String(drainMs), TETHER_HEALTH: 'off' });
    const { port } = await spawnedAddresses(proc);
    const chatters = await Promise.all(Array.from({ length: 10 }, (_, i) => chatter(port, clientAddress(i))));
    await waitFor(() => chatters.every((c) => c.echoes >= 3), 10_000, 'every WebSocket to echo');

    const signalledAt = Date.now();
    proc.kill('SIGTERM');
    await proc.waitForLog((l) => l.msg === 'shutting down: draining connections');
    // The clients finish their sessions one after another, each with a clean close
    // handshake that crosses tether both ways.
    for (const c of chatters) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      c.ws.close(1000, 'done');
    }
    await waitFor(() => chatters.every((c) => c.closedAt > 0), 10_000, 'every WebSocket to finish');
    const lastClosedAt = Math.max(...chatters.map((c) => c.closedAt));
    expect(chatters.map((c) => c.closeCode)).toEqual(chatters.map(() => 1000));
    expect(await proc.exited).toBe(0);
    const exitedAt = Date.now();
    expect(exitedAt - lastClosedAt).toBeLessThan(5_000);
    expect(exitedAt - signalledAt).toBeLessThan(drainMs / 2);
    console.log(`SIGTERM, 10 WebSockets finishing: exited 0 ${exitedAt - lastClosedAt} ms after the last one closed (${exitedAt - signalledAt} ms after the signal; deadline ${drainMs} ms)`);
  });
});

describe('SIGHUP', () => {
  it('reloads the config file: upstream changes apply and no connection drops', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    const dir = mkdtempSync(join(tmpdir(), 'tether-hup-'));
    const file = join(dir, 'tether.json');
    const write = (names: string[]): void =>
      writeFileSync(
        file,
        JSON.stringify({
          admin: '127.0.0.1:0',
          listeners: [{ name: 'main', listen: '127.0.0.1:0', health: 'off', upstreams: upstreams.filter((u) => names.includes(u.name)).map((u) => `${u.name}=${u.address}`) }],
        }),
      );
    write(['a', 'b']);
    proc = spawnTether({ TETHER_CONFIG: file });
    const { port, admin } = await spawnedAddresses(proc);
    const held = await Promise.all(Array.from({ length: 30 }, (_, i) => connectAndGreet(port, clientAddress(i))));
    expect(new Set(held.map((g) => g.upstream))).toEqual(new Set(['a', 'b']));
    let drops = 0;
    for (const g of held) g.socket.on('close', () => drops++);

    write(['a', 'c']); // b removed, c added
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l.msg === 'configuration reloaded');
    const { body } = await adminCall(admin, 'GET', '/upstreams');
    expect((body as { name: string }[]).map((u) => u.name).sort()).toEqual(['a', 'c']);
    // Every held connection, b's included, still relays.
    for (const g of held) expect(await echo(g.socket, 'ping')).toBe('ping');
    expect(drops).toBe(0);
    // The new table is built in a worker thread, after the reload is logged: new
    // connections follow it once /route does.
    await waitFor(
      async () => {
        const routed = new Set<string>();
        for (let i = 0; i < 30; i++) routed.add(((await adminCall(admin, 'GET', `/route?key=${clientAddress(i)}`)).body as { upstream: string }).upstream);
        return routed.has('c');
      },
      10_000,
      'the table with c in use',
    );
    const fresh = await Promise.all(Array.from({ length: 30 }, (_, i) => connectAndGreet(port, clientAddress(i))));
    expect(new Set(fresh.map((g) => g.upstream))).toEqual(new Set(['a', 'c']));
    for (const g of [...held, ...fresh]) g.socket.destroy();

    // A broken file on reload is rejected and the running configuration kept.
    writeFileSync(file, '{ not json');
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l.msg === 'reload rejected; keeping the running configuration');
    expect((await connectAndGreet(port, '127.0.0.2')).upstream).toMatch(/^[ac]$/);
  });
});
