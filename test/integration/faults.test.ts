import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closed, waitFor } from '../helpers/clients.js';
import { closeAll, ConnectionChurn, EchoTraffic, openConnections, type HeldConnection, type Lane } from '../helpers/load.js';
import { spawnUpstream, type UpstreamProcess } from '../helpers/processes.js';
import { adminCall, spawnTether, spawnedAddresses, startTether, type RunningTether, type TetherProcess } from '../helpers/tether.js';
import { startUpstreams, type TestUpstream } from '../helpers/upstreams.js';
import { listenLoopback } from '../helpers/listen.js';

/**
 * Issue 8, faults (tcp mode): what the network and upstreams throw at a balancer
 * while it carries traffic. Every byte sent is counted back.
 */

let tether: RunningTether | null = null;
let proc: TetherProcess | null = null;
let procs: UpstreamProcess[] = [];
let upstreams: TestUpstream[] = [];
let servers: net.Server[] = [];
const held: HeldConnection[] = [];

afterEach(async () => {
  await closeAll(held.splice(0).map((h) => h.socket));
  await tether?.close();
  tether = null;
  proc?.kill('SIGKILL');
  proc = null;
  await Promise.all(procs.map((p) => p.kill()));
  procs = [];
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
  for (const s of servers.splice(0)) s.close();
});

const roundsOf = (lanes: readonly Lane[]): number[] => lanes.map((l) => l.rounds);

/** Wait until every lane has done `more` rounds beyond `from` (the same lanes, in order). */
async function eachMoves(lanes: readonly Lane[], from: number[], more: number, what: string): Promise<void> {
  await waitFor(() => lanes.every((l, i) => l.rounds >= from[i]! + more), 20_000, what);
}

describe('an upstream killed mid-transfer', () => {
  it('closes exactly its clients\' connections; the others keep transferring, every byte echoed', async () => {
    procs = await Promise.all(['a', 'b', 'c'].map((n) => spawnUpstream(n)));
    tether = await startTether({ TETHER_UPSTREAMS: procs.map((p) => `${p.name}=${p.address}`).join(','), TETHER_HEALTH: 'off' });
    held.push(...(await openConnections(tether.port, 90)));
    const victims = held.filter((h) => h.upstream === 'b');
    expect(victims.length).toBeGreaterThanOrEqual(10);
    expect(held.length - victims.length).toBeGreaterThanOrEqual(20);

    // 64 KiB messages back to back: at any moment most lanes have bytes in flight.
    const traffic = new EchoTraffic(held, { messageBytes: 64 * 1024 });
    traffic.start();
    const victimLanes = traffic.lanes.filter((l) => l.tag === 'b');
    const others = traffic.lanes.filter((l) => l.tag !== 'b');
    await eachMoves(traffic.lanes, roundsOf(traffic.lanes).map(() => 0), 3, 'every lane to transfer');

    await procs[1]!.kill('SIGKILL');
    const killedAt = Date.now();
    const atKill = roundsOf(others);
    await waitFor(() => victimLanes.every((l) => l.dropped), 10_000, "every one of b's clients to be closed");
    const closedAfter = Date.now() - killedAt;
    // The others are unaffected: still open and still transferring after the kill.
    await eachMoves(others, atKill, 10, 'the other lanes to keep transferring');
    const totals = await traffic.stop();

    expect(traffic.lanes.filter((l) => l.dropped).map((l) => l.socket)).toEqual(victims.map((h) => h.socket));
    const rest = traffic.totals(others);
    expect(rest.dropped).toBe(0);
    expect(rest.corrupt).toBe(0);
    expect(rest.bytesEchoed).toBe(rest.bytesSent);
    // What b's clients got before the kill was intact, just cut short.
    expect(totals.corrupt).toBe(0);
    const listener = tether.tether.runtime()!.listener;
    await waitFor(() => listener.active === others.length, 5_000, "b's sessions to end in tether");
    expect(tether.tether.runtime()!.pool.get('b')!.active).toBe(0);
    console.log(
      `upstream killed: its ${victimLanes.length} of ${held.length} connections closed within ${closedAfter} ms; ` +
        `the other ${others.length} went on (${rest.rounds} echoes of 64 KiB in all, ${rest.bytesEchoed} of ${rest.bytesSent} bytes back, 0 dropped)`,
    );
  });
});

describe('an upstream that accepts and never answers', () => {
  it('is cut by TETHER_IDLE_TIMEOUT_MS, on both sides, and counted as a timeout', async () => {
    const accepted: net.Socket[] = [];
    const server = net.createServer((socket) => {
      // Accept, read nothing, write nothing: a hung process behind a live kernel.
      socket.pause();
      socket.on('error', () => {});
      accepted.push(socket);
    });
    servers.push(server);
    const port = await listenLoopback(server);
    tether = await startTether({ TETHER_UPSTREAMS: `hung=127.0.0.1:${port}`, TETHER_HEALTH: 'off', TETHER_IDLE_TIMEOUT_MS: '500' });

    const clients = Array.from({ length: 5 }, (_, i) => net.connect({ host: '127.0.0.1', port: tether!.port, localAddress: `127.0.0.${10 + i}` }));
    for (const c of clients) c.on('error', () => {});
    await Promise.all(clients.map((c) => new Promise<void>((resolve) => c.once('connect', () => resolve()))));
    await waitFor(() => accepted.length === clients.length, 5_000, 'the hung upstream to accept every connection');
    const sentAt = Date.now();
    for (const c of clients) c.write('GET / HTTP/1.1\r\nHost: hung\r\n\r\n');
    await Promise.all(clients.map((c) => closed(c)));
    const elapsed = Date.now() - sentAt;
    console.log(`upstream that never answers: ${clients.length} connections cut ${elapsed} ms after the request (TETHER_IDLE_TIMEOUT_MS=500)`);
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(5_000);
    // tether let go of the upstream side too, nothing left half-open behind it: the
    // hung process, were it to wake up and read, finds its connections closed.
    const upstreamSides = accepted.map((s) => closed(s));
    for (const s of accepted) s.resume();
    await Promise.all(upstreamSides);
    const listener = tether.tether.runtime()!.listener;
    await waitFor(() => listener.counters.outcomes.timeout === clients.length, 5_000, 'timeouts counted');
    expect(listener.active).toBe(0);
    for (const s of accepted) s.destroy();
  });
});

describe('reloads and admin changes under load', () => {
  it('SIGHUP (weights changed, an upstream added and removed) and admin PUT/drain/undrain/DELETE drop no connection and lose no byte', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c', 'd', 'e']);
    const address = (name: string): string => upstreams.find((u) => u.name === name)!.address;
    const dir = mkdtempSync(join(tmpdir(), 'tether-faults-'));
    const file = join(dir, 'tether.json');
    const write = (specs: string[]): void =>
      writeFileSync(
        file,
        JSON.stringify({
          admin: '127.0.0.1:0',
          accessLog: false,
          listeners: [{ name: 'main', listen: '127.0.0.1:0', health: 'off', upstreams: specs.map((s) => s.replace(/^(\w+)/, (n) => `${n}=${address(n)}`)) }],
        }),
      );
    write(['a', 'b', 'c']);
    proc = spawnTether({ TETHER_CONFIG: file });
    const { port, admin } = await spawnedAddresses(proc);

    held.push(...(await openConnections(port, 150)));
    expect(new Set(held.map((h) => h.upstream))).toEqual(new Set(['a', 'b', 'c']));
    const traffic = new EchoTraffic(held, { messageBytes: 2048, pauseMs: 5 });
    const churn = new ConnectionChurn(port, { address: (n) => `127.0.${1 + (n % 200)}.${2 + ((n * 7) % 249)}` });
    traffic.start();
    churn.start();
    const lanes = traffic.lanes;
    // Between changes: every held connection must have carried traffic again.
    const step = async (what: string): Promise<void> => eachMoves(lanes, roundsOf(lanes), 3, `traffic on every connection after ${what}`);
    await step('start');

    const reloads = (): number => proc!.logs.filter((l) => l.msg === 'configuration reloaded').length;
    write(['a*3', 'b', 'c*2', 'd']);
    proc.kill('SIGHUP');
    await waitFor(() => reloads() === 1, 10_000, 'the first reload');
    await step('reload 1');
    let list = (await adminCall(admin, 'GET', '/upstreams')).body as { name: string; weight: number }[];
    expect(list.map((u) => `${u.name}*${u.weight}`).sort()).toEqual(['a*3', 'b*1', 'c*2', 'd*1']);

    const calls: [string, string, unknown?][] = [
      ['PUT', '/upstreams/e', { address: address('e'), weight: 2 }],
      ['POST', '/upstreams/a/drain', {}],
      ['POST', '/upstreams/a/undrain'],
      ['PUT', '/upstreams/c', { address: address('c'), weight: 1 }],
      ['DELETE', '/upstreams/b'], // holds a third of the held connections: they go on
      ['DELETE', '/upstreams/e'],
    ];
    for (const [method, path, body] of calls) {
      const res = await adminCall(admin, method, path, body);
      expect(res.status, `${method} ${path}`).toBeLessThan(300);
      await step(`${method} ${path}`);
    }

    write(['a', 'b', 'c']);
    proc.kill('SIGHUP');
    await waitFor(() => reloads() === 2, 10_000, 'the second reload');
    await step('reload 2');
    list = (await adminCall(admin, 'GET', '/upstreams')).body as { name: string; weight: number }[];
    expect(list.map((u) => `${u.name}*${u.weight}`).sort()).toEqual(['a*1', 'b*1', 'c*1']);

    const [totals, churned] = await Promise.all([traffic.stop(), churn.stop()]);
    expect(totals.dropped).toBe(0);
    expect(totals.corrupt).toBe(0);
    expect(totals.bytesEchoed).toBe(totals.bytesSent);
    expect(churned.failures).toEqual([]);
    expect(churned.served).toBeGreaterThan(50);
    // New connections reached upstreams added on the way (d by reload, e by the API) too.
    expect(churned.byUpstream.get('d') ?? 0).toBeGreaterThan(0);
    expect(proc.stderr).toBe('');
    console.log(`reloads under load: ${totals.lanes} held connections, ${totals.rounds} echoes, ${totals.bytesEchoed} bytes, 0 dropped; ${churned.served} new connections served (${[...churned.byUpstream].map(([u, n]) => `${u} ${n}`).join(', ')})`);
  });
});
