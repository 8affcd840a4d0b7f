import { once } from 'node:events';
import http, { type ClientRequestArgs } from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { clientAddress, closed, connectAndGreet, waitFor } from '../helpers/clients.js';
import { parseExposition, series, value, type Exposition } from '../helpers/exposition.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { freePort, startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';
import { startWsUpstream, type WsUpstream } from '../helpers/ws.js';
import { listenLoopback } from '../helpers/listen.js';

let tether: RunningTether | null = null;
let upstreams: TestUpstream[] = [];
let wsUpstreams: WsUpstream[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await tether?.close();
  tether = null;
  await Promise.all([...upstreams, ...wsUpstreams].map((u) => u.close()));
  upstreams = [];
  wsUpstreams = [];
});

async function scrape(t: RunningTether, token?: string): Promise<Exposition> {
  const res = await fetch(`${t.admin}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

/** Client addresses whose key /route sends to each named upstream, `wanted[name]` of each. */
async function addressesFor(t: RunningTether, wanted: Record<string, number>): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = Object.fromEntries(Object.keys(wanted).map((k) => [k, []]));
  for (let i = 0; i < 2_000 && Object.entries(wanted).some(([k, n]) => out[k]!.length < n); i++) {
    const address = clientAddress(i);
    const answer = (await adminCall(t.admin, 'GET', `/route?key=${address}`)).body as { upstream: string };
    const list = out[answer.upstream];
    if (list && list.length < wanted[answer.upstream]!) list.push(address);
  }
  for (const [k, n] of Object.entries(wanted)) expect(out[k], `addresses routed to ${k}`).toHaveLength(n);
  return out;
}

/** Connect, read the greeting, send `payload`, read its echo, close; the bytes each way. */
async function exchange(port: number, from: string, expected: string, payloadBytes: number): Promise<{ fromClient: number; toClient: number }> {
  const { upstream, socket } = await connectAndGreet(port, from);
  expect(upstream).toBe(expected);
  const payload = Buffer.alloc(payloadBytes, 0x61 + (payloadBytes % 26));
  let echoed = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      echoed += chunk.length;
      if (echoed >= payloadBytes) resolve();
    });
    socket.once('error', reject);
    socket.write(payload);
  });
  socket.end();
  await closed(socket);
  expect(echoed).toBe(payloadBytes);
  return { fromClient: payloadBytes, toClient: `${expected}\n`.length + payloadBytes };
}

const CONTRACT_METRICS: [string, string][] = [
  ['tether_connections_active', 'gauge'],
  ['tether_connections_total', 'counter'],
  ['tether_bytes_total', 'counter'],
  ['tether_upstream_up', 'gauge'],
  ['tether_route_decisions_total', 'counter'],
  ['tether_ring_build_seconds', 'histogram'],
  ['tether_event_loop_delay_seconds', 'gauge'],
  ['tether_store_errors_total', 'counter'],
];

describe('GET /metrics', () => {
  it('counts connections by outcome, bytes both ways, open connections and route decisions', async () => {
    upstreams = await startUpstreams(['a', 'b']);
    const deadPort = await freePort();
    const maxConnections = 4;
    tether = await startTether({
      TETHER_UPSTREAMS: `${upstreamList(upstreams)},dead=127.0.0.1:${deadPort}`,
      TETHER_HEALTH: 'off',
      // Keep `dead` routable: these connect failures must not mark it down.
      TETHER_HEALTH_FALL: '100',
      TETHER_RETRIES: '0',
      TETHER_MAX_CONNECTIONS: String(maxConnections),
    });
    const t = tether;
    const addr = await addressesFor(t, { a: 5, b: 5, dead: 2 });

    // Every contract metric is there from the start, with Node's process metrics.
    const empty = await scrape(t);
    for (const [name, type] of CONTRACT_METRICS) expect(empty.types.get(name), name).toBe(type);
    expect(empty.types.has('process_cpu_user_seconds_total')).toBe(true);
    expect(empty.types.has('nodejs_heap_size_used_bytes')).toBe(true);
    expect(value(empty, 'tether_store_errors_total')).toBe(0);
    expect(empty.types.get('tether_pins_evicted_total')).toBe('counter');
    expect(value(empty, 'tether_ring_build_seconds_count')).toBe(1);
    // Beyond the contract: the first table of a listener is always built whole.
    expect(empty.types.get('tether_ring_builds_total')).toBe('counter');
    expect(value(empty, 'tether_ring_builds_total', { kind: 'full' })).toBe(1);
    expect(value(empty, 'tether_ring_builds_total', { kind: 'incremental' })).toBe(0);
    const loop = value(empty, 'tether_event_loop_delay_seconds');
    expect(Number.isFinite(loop) && loop >= 0).toBe(true);

    // 3 + 3 complete exchanges with known sizes.
    const bytes: Record<string, { fromClient: number; toClient: number }> = { a: { fromClient: 0, toClient: 0 }, b: { fromClient: 0, toClient: 0 } };
    const sizes = [1, 1_000, 70_000];
    for (const name of ['a', 'b'] as const) {
      for (let i = 0; i < sizes.length; i++) {
        const got = await exchange(t.port, addr[name]![i]!, name, sizes[i]! + (name === 'b' ? 7 : 0));
        bytes[name]!.fromClient += got.fromClient;
        bytes[name]!.toClient += got.toClient;
      }
    }
    // 2 connect failures (no retries).
    for (const from of addr.dead!) {
      const { upstream, socket } = await connectAndGreet(t.port, from);
      expect(upstream).toBeNull();
      await closed(socket);
    }
    await waitFor(
      async () => {
        const e = await scrape(t);
        return series(e, 'tether_connections_total').reduce((n, s) => n + s.value, 0) === 8;
      },
      5_000,
      '8 closed connections counted',
    );

    // Fill the connection limit (2 on a, 2 on b), then 3 more are refused.
    const held = [addr.a![3]!, addr.a![4]!, addr.b![3]!, addr.b![4]!];
    for (const from of held) {
      const g = await connectAndGreet(t.port, from);
      expect(g.upstream).not.toBeNull();
      sockets.push(g.socket);
    }
    for (let i = 0; i < 3; i++) {
      const { upstream, socket } = await connectAndGreet(t.port, addr.a![0]!);
      expect(upstream).toBeNull();
      await closed(socket);
    }
    await waitFor(async () => value(await scrape(t), 'tether_connections_total', { listener: 'default', upstream: '', outcome: 'refused' }) === 3, 5_000, '3 refused');

    const e = await scrape(t);
    const L = { listener: 'default' };
    expect(value(e, 'tether_connections_total', { ...L, upstream: 'a', outcome: 'ok' })).toBe(3);
    expect(value(e, 'tether_connections_total', { ...L, upstream: 'b', outcome: 'ok' })).toBe(3);
    expect(value(e, 'tether_connections_total', { ...L, upstream: '', outcome: 'connect_failed' })).toBe(2);
    expect(value(e, 'tether_connections_total', { ...L, upstream: '', outcome: 'refused' })).toBe(3);
    expect(series(e, 'tether_connections_total').reduce((n, s) => n + s.value, 0)).toBe(11);
    // Bytes count as they pass: the held connections' greetings are in already.
    for (const name of ['a', 'b']) {
      expect(value(e, 'tether_bytes_total', { ...L, upstream: name, direction: 'from_client' }), `${name} from_client`).toBe(bytes[name]!.fromClient);
      expect(value(e, 'tether_bytes_total', { ...L, upstream: name, direction: 'to_client' }), `${name} to_client`).toBe(bytes[name]!.toClient + 2 * `${name}\n`.length);
    }
    expect(value(e, 'tether_connections_active', { ...L, upstream: 'a' })).toBe(2);
    expect(value(e, 'tether_connections_active', { ...L, upstream: 'b' })).toBe(2);
    expect(value(e, 'tether_connections_active', { ...L, upstream: 'dead' })).toBe(0);
    // Every connection that got past the limit was routed by hash once; refused ones were not routed.
    expect(value(e, 'tether_route_decisions_total', { ...L, via: 'hash' })).toBe(3 + 3 + 2 + 4);
    expect(value(e, 'tether_route_decisions_total', { ...L, via: 'p2c' })).toBe(0);
    // Nothing learns in tcp mode without TETHER_STICK: no learned series at all.
    expect(e.samples.some((s) => s.name === 'tether_route_decisions_total' && s.labels.via === 'learned')).toBe(false);
    for (const name of ['a', 'b', 'dead']) expect(value(e, 'tether_upstream_up', { ...L, upstream: name })).toBe(1);

    // The held connections close: active drops to 0, their greetings are counted.
    for (const s of sockets.splice(0)) {
      s.end();
      await closed(s);
    }
    await waitFor(async () => value(await scrape(t), 'tether_connections_active', { ...L, upstream: 'a' }) === 0, 5_000, 'no open connection');
    const after = await scrape(t);
    expect(value(after, 'tether_connections_active', { ...L, upstream: 'b' })).toBe(0);
    expect(value(after, 'tether_connections_total', { ...L, upstream: 'a', outcome: 'ok' })).toBe(5);
    expect(value(after, 'tether_connections_total', { ...L, upstream: 'b', outcome: 'ok' })).toBe(5);
    expect(value(after, 'tether_bytes_total', { ...L, upstream: 'a', direction: 'to_client' })).toBe(bytes.a!.toClient + 2 * 'a\n'.length);
    expect(value(after, 'tether_bytes_total', { ...L, upstream: 'b', direction: 'from_client' })).toBe(bytes.b!.fromClient);
  });

  it('reports upstream_up 0 once a health check marks an upstream down; draining counts as up', async () => {
    upstreams = await startUpstreams(['a']);
    const deadPort = await freePort();
    tether = await startTether({
      TETHER_UPSTREAMS: `${upstreamList(upstreams)},dead=127.0.0.1:${deadPort}`,
      TETHER_HEALTH: 'tcp',
      TETHER_HEALTH_INTERVAL_MS: '100',
      TETHER_HEALTH_FALL: '2',
    });
    const t = tether;
    const L = { listener: 'default' };
    await waitFor(async () => value(await scrape(t), 'tether_upstream_up', { ...L, upstream: 'dead' }) === 0, 5_000, 'dead to be reported down');
    // The start-up table, then the rebuild without `dead` (built in a worker thread,
    // so it may land a moment after the health change that asked for it).
    await waitFor(async () => value(await scrape(t), 'tether_ring_build_seconds_count') === 2, 10_000, 'the rebuild without dead');
    let e = await scrape(t);
    expect(value(e, 'tether_upstream_up', { ...L, upstream: 'a' })).toBe(1);
    expect(value(e, 'tether_ring_build_seconds_count')).toBe(2);
    expect(value(e, 'tether_ring_build_seconds_bucket', { le: '+Inf' })).toBe(2);
    // One of two upstreams gone: derived from the start-up ring.
    expect(value(e, 'tether_ring_builds_total', { kind: 'incremental' })).toBe(1);

    expect((await adminCall(t.admin, 'POST', '/upstreams/a/drain', {})).status).toBe(200);
    e = await scrape(t);
    expect(value(e, 'tether_upstream_up', { ...L, upstream: 'a' })).toBe(1);
    expect(value(e, 'tether_ring_build_seconds_count')).toBe(3);
    // Nothing routable left: an empty table, built whole.
    expect(value(e, 'tether_ring_builds_total', { kind: 'full' })).toBe(2);
    const sum = value(e, 'tether_ring_build_seconds_sum');
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(1);
  });

  it('counts a removed upstream\'s open connections until they close', async () => {
    upstreams = await startUpstreams(['a', 'b']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const t = tether;
    const L = { listener: 'default' };
    const held = await connectAndGreet(t.port, '127.0.0.9');
    sockets.push(held.socket);
    const name = held.upstream!;
    expect((await adminCall(t.admin, 'DELETE', `/upstreams/${name}`)).status).toBe(200);
    let e = await scrape(t);
    expect(value(e, 'tether_connections_active', { ...L, upstream: name })).toBe(1);
    expect(series(e, 'tether_upstream_up').map((s) => s.labels.upstream)).toEqual([name === 'a' ? 'b' : 'a']);

    held.socket.end();
    await closed(held.socket);
    await waitFor(async () => value(await scrape(t), 'tether_connections_total', { ...L, upstream: name, outcome: 'ok' }) === 1, 5_000, 'the close to be counted');
    e = await scrape(t);
    expect(series(e, 'tether_connections_active').filter((s) => s.labels.upstream === name)).toEqual([]);
  });

  it('reports the event loop\'s p99 delay beyond the sampling period: a 300 ms stall shows as about 0.3 s', async () => {
    upstreams = await startUpstreams(['a']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const t = tether;
    await scrape(t); // starts a fresh window
    await new Promise((r) => setTimeout(r, 60));
    // The balancer runs in this process: block its loop as a 300 ms inline build would.
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // busy
    }
    await new Promise((r) => setTimeout(r, 30));
    const afterStall = await scrape(t);
    const stalled = value(afterStall, 'tether_event_loop_delay_seconds');
    expect(stalled).toBeGreaterThanOrEqual(0.27);
    // Node's family reads the same sampler, the period included.
    expect(value(afterStall, 'nodejs_eventloop_lag_max_seconds')).toBeGreaterThanOrEqual(0.28);
    expect(value(afterStall, 'nodejs_eventloop_lag_min_seconds')).toBeLessThan(0.05);
    expect(stalled).toBeLessThan(5);
    // Sampling every 10 ms, the period itself is not reported as delay.
    await new Promise((r) => setTimeout(r, 300));
    expect(value(await scrape(t), 'tether_event_loop_delay_seconds')).toBeLessThan(stalled);
  });

  it('needs the bearer token when one is set (no ?token= here)', async () => {
    upstreams = await startUpstreams(['a']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_ADMIN_TOKEN: 'tok-metrics' });
    const t = tether;
    expect((await fetch(`${t.admin}/metrics`)).status).toBe(401);
    expect((await fetch(`${t.admin}/metrics`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await fetch(`${t.admin}/metrics?token=tok-metrics`)).status).toBe(401);
    const e = await scrape(t, 'tok-metrics');
    for (const [name] of CONTRACT_METRICS) expect(e.types.has(name), name).toBe(true);
    expect((await fetch(`${t.admin}/metrics`, { method: 'POST', headers: { authorization: 'Bearer tok-metrics' } })).status).toBe(405);
  });
  it('?name= renders only the families named (repeatable), equal to their part of a whole scrape; an unknown name is a 404', async () => {
    upstreams = await startUpstreams(['a', 'b']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const t = tether;
    const whole = String((await adminCall(t.admin, 'GET', '/metrics')).body);
    const answer = await fetch(`${t.admin}/metrics?name=tether_upstream_up&name=tether_ring_builds_total`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain/);
    const some = parseExposition(await answer.text());
    expect([...some.types.keys()].sort()).toEqual(['tether_ring_builds_total', 'tether_upstream_up']);
    expect(value(some, 'tether_upstream_up', { listener: 'default', upstream: 'a' })).toBe(1);
    expect(value(some, 'tether_upstream_up', { listener: 'default', upstream: 'b' })).toBe(1);
    const all = parseExposition(whole);
    for (const family of ['tether_upstream_up', 'tether_ring_builds_total']) {
      expect(some.samples.filter((x) => x.name === family)).toEqual(all.samples.filter((x) => x.name === family));
    }
    // Every family of the whole scrape is there once, in text the parser accepts.
    for (const [name] of CONTRACT_METRICS) expect(all.types.has(name), name).toBe(true);
    const unknown = await adminCall(t.admin, 'GET', '/metrics?name=tether_upstream_up&name=no_such_metric');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'TETHER_ERR_NOT_FOUND', error: 'no metric named "no_such_metric"' });
  });
});

describe('tether_bytes_total counts bytes as they pass', () => {
  const MiB = 1 << 20;
  for (const mode of ['tcp', 'http'] as const) {
    it(`${mode} mode: a WebSocket relaying 1 MiB shows it within 2 s while open, and exactly its traffic once closed`, async () => {
      const ws = await startWsUpstream('w');
      wsUpstreams.push(ws);
      tether = await startTether({ TETHER_MODE: mode, TETHER_UPSTREAMS: `w=${ws.address}`, TETHER_HEALTH: 'off' });
      const t = tether;
      const L = { listener: 'default', upstream: 'w' };
      // The client's own socket: its byte counts are the traffic on the wire.
      let socket: net.Socket | null = null;
      const client = new WebSocket(`ws://127.0.0.1:${t.port}/`, {
        perMessageDeflate: false,
        createConnection: (options: ClientRequestArgs) => (socket = net.connect(options as net.NetConnectOpts)),
      });
      client.on('error', () => {});
      await once(client, 'open');
      const echoed = once(client, 'message');
      client.send(Buffer.alloc(MiB, 0x61));
      await echoed;

      // Relayed both ways, the connection still open: counted within 2 s, not at close.
      const started = Date.now();
      await waitFor(
        async () => {
          const e = await scrape(t);
          return value(e, 'tether_bytes_total', { ...L, direction: 'from_client' }) >= MiB && value(e, 'tether_bytes_total', { ...L, direction: 'to_client' }) >= MiB;
        },
        2_000,
        '1 MiB each way in bytes_total while the WebSocket is open',
      );
      expect(Date.now() - started).toBeLessThanOrEqual(2_000);
      expect(client.readyState).toBe(WebSocket.OPEN);
      expect(value(await scrape(t), 'tether_connections_active', L)).toBe(1);
      // The stats page reads the same counts.
      const stats = (await adminCall(t.admin, 'GET', '/stats.json')).body as { listeners: { upstreams: { name: string; fromClient: number }[] }[] };
      expect(stats.listeners[0]!.upstreams.find((u) => u.name === 'w')!.fromClient).toBeGreaterThanOrEqual(MiB);

      // Closed: counted once, exactly what crossed the client's socket (the upgrade included).
      client.close();
      await once(client, 'close');
      await waitFor(async () => value(await scrape(t), 'tether_connections_active', L) === 0, 5_000, 'the connection to end');
      const e = await scrape(t);
      const wire = socket as net.Socket | null;
      expect(value(e, 'tether_bytes_total', { ...L, direction: 'from_client' })).toBe(wire!.bytesWritten);
      expect(value(e, 'tether_bytes_total', { ...L, direction: 'to_client' })).toBe(wire!.bytesRead);
      expect(wire!.bytesWritten).toBeGreaterThan(MiB);
    });
  }

  it('http mode: an upload in progress shows its bytes while it runs, and counts once when answered', async () => {
    // An upstream that reads the body as it comes and answers only when the client says so.
    let finish: (() => void) | null = null;
    const server = http.createServer((req, res) => {
      req.resume();
      finish = () => res.end('done');
    });
    const port = await listenLoopback(server);
    try {
      tether = await startTether({ TETHER_MODE: 'http', TETHER_UPSTREAMS: `u=127.0.0.1:${port}`, TETHER_HEALTH: 'off' });
      const t = tether;
      const L = { listener: 'default', upstream: 'u' };
      const socket = net.connect(t.port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 * MiB}\r\n\r\n`);
      socket.write(Buffer.alloc(MiB, 0x62));
      await waitFor(async () => value(await scrape(t), 'tether_bytes_total', { ...L, direction: 'from_client' }) >= MiB, 2_000, 'the first MiB counted while the request is open');
      socket.write(Buffer.alloc(MiB, 0x62));
      await waitFor(async () => finish !== null, 5_000, 'the upstream to have the request');
      await waitFor(async () => value(await scrape(t), 'tether_bytes_total', { ...L, direction: 'from_client' }) >= 2 * MiB, 2_000, 'the whole body counted');
      const answered = once(socket, 'data');
      finish!();
      await answered;
      await waitFor(async () => value(await scrape(t), 'tether_connections_active', L) === 0, 5_000, 'the request to end');
      const e = await scrape(t);
      // Counted once: the head and body sent, not twice for the open and the ended request.
      expect(value(e, 'tether_bytes_total', { ...L, direction: 'from_client' })).toBe(socket.bytesWritten);
      socket.destroy();
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
