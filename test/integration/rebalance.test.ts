import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, waitFor } from '../helpers/clients.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { StickyClient, startWsUpstream, type WsUpstream } from '../helpers/ws.js';

let tether: RunningTether | null = null;
let upstreams: WsUpstream[] = [];
let httpUpstreams: HttpUpstream[] = [];
let clients: StickyClient[] = [];

afterEach(async () => {
  for (const c of clients) c.stop();
  clients = [];
  await tether?.close();
  tether = null;
  await Promise.all([...upstreams, ...httpUpstreams].map((u) => u.close()));
  upstreams = [];
  httpUpstreams = [];
});

async function connectAll(port: number, count: number): Promise<StickyClient[]> {
  const out: StickyClient[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) => new StickyClient(port, clientAddress(i + j)));
    await Promise.all(batch.map((c) => c.connect()));
    out.push(...batch);
  }
  return out;
}

async function routeOf(admin: string, key: string): Promise<string> {
  const { body } = await adminCall(admin, 'GET', `/route?key=${encodeURIComponent(key)}`);
  return (body as { upstream: string }).upstream;
}

describe('POST /rebalance', () => {
  it('scale-out: 300 WebSocket clients on 3 upstreams, a 4th added, only the moved keys reconnect, onto the 4th, within 5 s', async () => {
    upstreams = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startWsUpstream(n)));
    const [a, b, c, d] = upstreams;
    tether = await startTether({
      TETHER_UPSTREAMS: [a, b, c].map((u) => `${u!.name}=${u!.address}`).join(','),
      TETHER_HEALTH: 'off',
    });
    const t = tether;
    clients = await connectAll(t.port, 300);
    // Each on the upstream its key hashes to; all three in use.
    for (const client of clients) expect(client.upstream).toBe(await routeOf(t.admin, client.localAddress));
    expect(new Set(clients.map((x) => x.upstream))).toEqual(new Set(['a', 'b', 'c']));

    expect((await adminCall(t.admin, 'PUT', '/upstreams/d', { address: d!.address })).status).toBe(201);
    // Adding d moved no open connection: it sits idle, the classic complaint.
    expect(d!.open()).toBe(0);
    const moved = new Set<StickyClient>();
    for (const client of clients) if ((await routeOf(t.admin, client.localAddress)) === 'd') moved.add(client);
    expect(moved.size).toBeGreaterThan(300 * 0.15);
    expect(moved.size).toBeLessThan(300 * 0.35);

    const started = performance.now();
    const answer = await adminCall(t.admin, 'POST', '/rebalance', { perSecond: 100 });
    expect(answer).toEqual({ status: 200, body: { listener: 'default', moving: moved.size, perSecond: 100 } });

    await waitFor(() => [...moved].every((x) => x.connected && x.upstream === 'd'), 5_000, 'moved clients on d');
    for (const client of clients) {
      if (moved.has(client)) {
        // Closed once, reconnected once, onto d.
        expect(client.upstreams).toHaveLength(2);
        expect(client.closes).toHaveLength(1);
      } else {
        // Not one connection of an unmoved key was closed.
        expect(client.closes, client.localAddress).toHaveLength(0);
        expect(client.upstreams).toHaveLength(1);
      }
    }
    expect(d!.open()).toBe(moved.size);
    // At most 100 a second: the k-th close came no earlier than k / 100 s after the call.
    const times = [...moved].map((x) => x.closes[0]! - started).sort((x, y) => x - y);
    times.forEach((time, k) => expect(time).toBeGreaterThanOrEqual((k + 1) * 10 - 2));
    // Everyone still talks, on the upstream their key hashes to now.
    for (const client of clients.slice(0, 60)) {
      expect(await client.echo('ping')).toBe(`${await routeOf(t.admin, client.localAddress)}:ping`);
    }
    const list = (await adminCall(t.admin, 'GET', '/upstreams')).body as { name: string; active: number }[];
    expect(list.find((u) => u.name === 'd')!.active).toBe(moved.size);
    expect(list.reduce((n, u) => n + u.active, 0)).toBe(300);
  });

  it('moves connections off a removed or draining upstream, and nothing when nothing moved', async () => {
    upstreams = await Promise.all(['a', 'b', 'c'].map((n) => startWsUpstream(n)));
    tether = await startTether({ TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','), TETHER_HEALTH: 'off' });
    const t = tether;
    clients = await connectAll(t.port, 60);
    expect((await adminCall(t.admin, 'POST', '/rebalance', {})).body).toEqual({ listener: 'default', moving: 0, perSecond: 50 });

    const onB = clients.filter((x) => x.upstream === 'b');
    const onC = clients.filter((x) => x.upstream === 'c');
    expect(onB.length).toBeGreaterThan(0);
    expect(onC.length).toBeGreaterThan(0);
    // Removed and drained: open connections go on until a rebalance.
    await adminCall(t.admin, 'DELETE', '/upstreams/b');
    await adminCall(t.admin, 'POST', '/upstreams/c/drain', {});
    expect(clients.every((x) => x.closes.length === 0)).toBe(true);
    const { body } = await adminCall(t.admin, 'POST', '/rebalance', { perSecond: 1000 });
    expect(body).toEqual({ listener: 'default', moving: onB.length + onC.length, perSecond: 1000 });
    await waitFor(() => [...onB, ...onC].every((x) => x.connected && x.upstream === 'a'), 10_000, 'clients of b and c on a');
    for (const x of clients) expect(x.closes).toHaveLength(onB.includes(x) || onC.includes(x) ? 1 : 0);
  });

  it('never moves connections routed without a key (power of two choices)', async () => {
    upstreams = await Promise.all(['a', 'b'].map((n) => startWsUpstream(n)));
    tether = await startTether({
      TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','),
      TETHER_HEALTH: 'off',
      // No source-ip in the chain: tcp mode finds no key, so p2c places connections.
      TETHER_KEY: 'header:x-session',
    });
    const t = tether;
    clients = await connectAll(t.port, 20);
    await adminCall(t.admin, 'DELETE', '/upstreams/b');
    expect((await adminCall(t.admin, 'POST', '/rebalance', { perSecond: 1000 })).body).toMatchObject({ moving: 0 });
    await new Promise((r) => setTimeout(r, 200));
    expect(clients.every((x) => x.closes.length === 0)).toBe(true);
  });

  it('http mode: moves hash-routed WebSocket connections, never those routed by a learned pin', async () => {
    httpUpstreams = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startHttpUpstream(n)));
    const [a, b, c, d] = httpUpstreams;
    tether = await startTether({
      TETHER_MODE: 'http',
      TETHER_UPSTREAMS: [a, b, c].map((u) => `${u!.name}=${u!.address}`).join(','),
      TETHER_HEALTH: 'off',
      TETHER_KEY: 'query:id',
      TETHER_LEARN: 'header:x-upload=(.+)',
    });
    const t = tether;
    // 40 keys learned (pinned where they hashed then), 80 keys only hashed.
    const learned = Array.from({ length: 40 }, (_, i) => `up-${i}`);
    for (const id of learned) {
      const res = await fetch(`http://127.0.0.1:${t.port}/create?id=${id}`, { method: 'POST' });
      expect(res.headers.get('x-upload')).toBe(id);
      await res.arrayBuffer();
    }
    const hashed = Array.from({ length: 80 }, (_, i) => `ws-${i}`);
    const via = async (id: string): Promise<{ upstream: string; via: string }> =>
      (await adminCall(t.admin, 'GET', `/route?key=${id}`)).body as { upstream: string; via: string };
    for (const id of learned) expect((await via(id)).via).toBe('learned');
    const byId = new Map<string, StickyClient>();
    for (const id of [...learned, ...hashed]) byId.set(id, new StickyClient(t.port, '127.0.0.1', `/?id=${id}`));
    clients = [...byId.values()];
    await Promise.all(clients.map((x) => x.connect()));

    await adminCall(t.admin, 'PUT', '/upstreams/d', { address: d!.address });
    const moved = new Set<string>();
    const pinnedButHashElsewhere: string[] = [];
    for (const id of hashed) if ((await via(id)).upstream === 'd') moved.add(id);
    // Pins still win for the learned keys, even where their hash now says d.
    for (const id of learned) {
      const r = await via(id);
      expect(r.via).toBe('learned');
      expect(r.upstream).toBe(byId.get(id)!.upstream);
    }
    const probe = t.tether.runtime()!.pool;
    for (const id of learned) if (probe.primary(id)!.name === 'd') pinnedButHashElsewhere.push(id);
    expect(moved.size).toBeGreaterThan(0);
    expect(pinnedButHashElsewhere.length).toBeGreaterThan(0);

    const { body } = await adminCall(t.admin, 'POST', '/rebalance', { perSecond: 1000 });
    expect(body).toEqual({ listener: 'default', moving: moved.size, perSecond: 1000 });
    await waitFor(() => [...moved].every((id) => byId.get(id)!.connected && byId.get(id)!.upstream === 'd'), 10_000, 'moved keys on d');
    for (const [id, x] of byId) expect(x.closes, id).toHaveLength(moved.has(id) ? 1 : 0);
  });

  it('answers bad input clearly', async () => {
    upstreams = [await startWsUpstream('a')];
    tether = await startTether({ TETHER_UPSTREAMS: `a=${upstreams[0]!.address}`, TETHER_HEALTH: 'off' });
    const t = tether;
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/rebalance', { perSecond: 0 }, 400, 'TETHER_ERR_BAD_REQUEST'],
      ['POST', '/rebalance', { perSecond: -5 }, 400, 'TETHER_ERR_BAD_REQUEST'],
      ['POST', '/rebalance', { perSecond: '10' }, 400, 'TETHER_ERR_BAD_REQUEST'],
      ['POST', '/rebalance', { perSecond: 1e9 }, 400, 'TETHER_ERR_BAD_REQUEST'],
      ['POST', '/rebalance', [1], 400, 'TETHER_ERR_BAD_REQUEST'],
      ['POST', '/rebalance?listener=nope', {}, 404, 'TETHER_ERR_NOT_FOUND'],
      ['GET', '/rebalance', undefined, 405, 'TETHER_ERR_METHOD'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await adminCall(t.admin, method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(status);
      expect((res.body as { code: string }).code).toBe(code);
    }
    expect((await adminCall(t.admin, 'POST', '/rebalance?listener=default', { perSecond: 0.5 })).body).toEqual({
      listener: 'default',
      moving: 0,
      perSecond: 0.5,
    });
  });
});
