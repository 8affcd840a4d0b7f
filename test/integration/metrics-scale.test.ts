import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, closed, connectAndGreet, waitFor } from '../helpers/clients.js';
import { parseExposition, series, value, type Exposition } from '../helpers/exposition.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { freePort, startUpstreams, type TestUpstream } from '../helpers/upstreams.js';

/**
 * GET /metrics with thousands of upstreams, where the per-upstream families are written
 * a slice at a time (src/admin/prom-text.ts): every line whole, every series once, the
 * values right, and membership changes landing between slices change nothing of that.
 */

const UPSTREAMS = 3_000;
/** Real servers behind the names: pod-i is served by server i % SERVERS. */
const SERVERS = 4;
const L = { listener: 'default' };

let tether: RunningTether | null = null;
let servers: TestUpstream[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await tether?.close();
  tether = null;
  await Promise.all(servers.map((u) => u.close()));
  servers = [];
});

async function startLarge(): Promise<RunningTether> {
  servers = await startUpstreams(Array.from({ length: SERVERS }, (_, i) => `server-${i}`));
  const list = Array.from({ length: UPSTREAMS }, (_, i) => `pod-${i}=${servers[i % SERVERS]!.address}`).join(',');
  tether = await startTether({ TETHER_UPSTREAMS: list, TETHER_HEALTH: 'off', TETHER_HEALTH_FALL: '1', TETHER_RETRIES: '0' });
  return tether;
}

/** A whole scrape, parsed: throws on a malformed line or a series written twice. */
async function scrape(t: RunningTether): Promise<Exposition> {
  const res = await fetch(`${t.admin}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

/** The upstream names of a family's series. */
function upstreamsOf(e: Exposition, family: string): string[] {
  return series(e, family).map((s) => s.labels.upstream!);
}

/** Distinct upstreams and, for each, a client address whose key /route sends there. */
async function distinctRoutes(t: RunningTether, count: number): Promise<{ upstream: string; address: string }[]> {
  const found = new Map<string, string>();
  for (let i = 0; found.size < count && i < 200; i++) {
    const address = clientAddress(i);
    const answer = (await adminCall(t.admin, 'GET', `/route?key=${address}`)).body as { upstream: string };
    if (!found.has(answer.upstream)) found.set(answer.upstream, address);
  }
  expect(found.size).toBe(count);
  return [...found].map(([upstream, address]) => ({ upstream, address }));
}

/** The server that serves pod-i. */
function serverOf(upstream: string): string {
  return `server-${Number(upstream.slice('pod-'.length)) % SERVERS}`;
}

describe(`GET /metrics at ${UPSTREAMS.toLocaleString('en-US')} upstreams`, () => {
  it('has every line whole, every series once, and the right value in each', async () => {
    const t = await startLarge();
    const [held, sent1, sent2, drained, broken, removed] = await distinctRoutes(t, 6);

    // Three open connections to one upstream.
    for (let i = 0; i < 3; i++) {
      const g = await connectAndGreet(t.port, held!.address);
      expect(g.upstream).toBe(serverOf(held!.upstream));
      sockets.push(g.socket);
    }
    // Two closed exchanges with known sizes.
    const bytes = new Map<string, { fromClient: number; toClient: number }>();
    for (const [route, size] of [
      [sent1!, 1_000],
      [sent2!, 70_000],
    ] as const) {
      const { upstream, socket } = await connectAndGreet(t.port, route.address);
      expect(upstream).toBe(serverOf(route.upstream));
      let echoed = 0;
      await new Promise<void>((resolve, reject) => {
        socket.on('data', (chunk: Buffer) => {
          echoed += chunk.length;
          if (echoed >= size) resolve();
        });
        socket.once('error', reject);
        socket.write(Buffer.alloc(size, 0x61));
      });
      socket.end();
      await closed(socket);
      bytes.set(route.upstream, { fromClient: size, toClient: `${upstream}\n`.length + size });
    }
    // Drained: still up.
    expect((await adminCall(t.admin, 'POST', `/upstreams/${drained!.upstream}/drain`, {})).status).toBe(200);
    // Moved to a dead port, then a client's connect fails there: down (TETHER_HEALTH_FALL=1).
    const dead = await freePort();
    expect((await adminCall(t.admin, 'PUT', `/upstreams/${broken!.upstream}`, { address: `127.0.0.1:${dead}` })).status).toBe(200);
    const failed = await connectAndGreet(t.port, broken!.address);
    expect(failed.upstream).toBeNull();
    await closed(failed.socket);
    // Removed while a connection is open: counted in connections_active until it closes.
    const lingering = await connectAndGreet(t.port, removed!.address);
    sockets.push(lingering.socket);
    expect((await adminCall(t.admin, 'DELETE', `/upstreams/${removed!.upstream}`)).status).toBe(200);

    await waitFor(async () => value(await scrape(t), 'tether_upstream_up', { ...L, upstream: broken!.upstream }) === 0, 20_000, `${broken!.upstream} to be down`);
    await waitFor(
      async () => series(await scrape(t), 'tether_connections_total').reduce((n, s) => n + s.value, 0) === 3,
      20_000,
      'three closed connections counted',
    );
    const e = await scrape(t);

    const all = Array.from({ length: UPSTREAMS }, (_, i) => `pod-${i}`);
    const live = all.filter((n) => n !== removed!.upstream);
    expect(upstreamsOf(e, 'tether_upstream_up').sort()).toEqual([...live].sort());
    for (const s of series(e, 'tether_upstream_up')) {
      expect(s.labels.listener).toBe('default');
      expect(s.value, s.labels.upstream).toBe(s.labels.upstream === broken!.upstream ? 0 : 1);
    }
    expect(upstreamsOf(e, 'tether_connections_active').sort()).toEqual([...all].sort());
    for (const s of series(e, 'tether_connections_active')) {
      const expected = s.labels.upstream === held!.upstream ? 3 : s.labels.upstream === removed!.upstream ? 1 : 0;
      expect(s.value, s.labels.upstream).toBe(expected);
    }
    expect(series(e, 'tether_connections_total').map((s) => [s.labels.upstream, s.labels.outcome, s.value]).sort()).toEqual(
      [
        ['', 'connect_failed', 1],
        [sent1!.upstream, 'ok', 1],
        [sent2!.upstream, 'ok', 1],
      ].sort(),
    );
    // Open connections count as bytes pass: the greetings of the held ones and of the lingering one.
    bytes.set(held!.upstream, { fromClient: 0, toClient: 3 * `${serverOf(held!.upstream)}\n`.length });
    bytes.set(removed!.upstream, { fromClient: 0, toClient: `${serverOf(removed!.upstream)}\n`.length });
    expect(series(e, 'tether_bytes_total')).toHaveLength(8);
    for (const [upstream, b] of bytes) {
      expect(value(e, 'tether_bytes_total', { ...L, upstream, direction: 'from_client' })).toBe(b.fromClient);
      expect(value(e, 'tether_bytes_total', { ...L, upstream, direction: 'to_client' })).toBe(b.toClient);
    }
    // One family alone reads as in the whole scrape.
    const alone = parseExposition(String((await adminCall(t.admin, 'GET', '/metrics?name=tether_upstream_up')).body));
    expect(alone.samples).toEqual(series(e, 'tether_upstream_up'));
    expect([...alone.types.keys()]).toEqual(['tether_upstream_up']);

    // The lingering connection closes: the removed upstream's series goes.
    lingering.socket.end();
    await closed(lingering.socket);
    await waitFor(async () => !upstreamsOf(await scrape(t), 'tether_connections_active').includes(removed!.upstream), 20_000, 'the removed upstream to go');
  });

  it('answers whole, with each series once, while upstreams are added, removed and drained mid-scrape', async () => {
    const t = await startLarge();
    const ever = new Set(Array.from({ length: UPSTREAMS }, (_, i) => `pod-${i}`));
    const touched = new Set<string>();
    let answers = 0;
    for (let round = 0; round < 4; round++) {
      const scrapes = Array.from({ length: 3 }, () => fetch(`${t.admin}/metrics`).then(async (r) => ({ status: r.status, text: await r.text() })));
      const changes: Promise<{ status: number }>[] = [];
      for (let k = 0; k < 12; k++) {
        const added = `added-${round}-${k}`;
        const victim = `pod-${round * 100 + k}`;
        const drained = `pod-${1_000 + round * 100 + k}`;
        ever.add(added);
        for (const name of [added, victim, drained]) touched.add(name);
        changes.push(adminCall(t.admin, 'PUT', `/upstreams/${added}`, { address: servers[k % SERVERS]!.address }));
        changes.push(adminCall(t.admin, 'DELETE', `/upstreams/${victim}`));
        changes.push(adminCall(t.admin, 'POST', `/upstreams/${drained}/${k % 2 === 0 ? 'drain' : 'undrain'}`, {}));
        // Let the scrapes run a slice between changes. (Where the changes land in each
        // scrape is up to timing; test/unit/admin/metrics.test.ts puts one between every
        // two lines.)
        await new Promise((r) => setImmediate(r));
      }
      for (const c of await Promise.all(changes)) expect([200, 201]).toContain(c.status);
      for (const { status, text } of await Promise.all(scrapes)) {
        expect(status).toBe(200);
        const e = parseExposition(text); // throws on a broken line or a series twice
        answers++;
        for (const family of ['tether_upstream_up', 'tether_connections_active']) {
          const names = upstreamsOf(e, family);
          for (const name of names) expect(ever.has(name), `${family} ${name}`).toBe(true);
          // Every upstream nobody touched is there, whatever happened around it.
          const present = new Set(names);
          for (const name of ever) if (!touched.has(name)) expect(present.has(name), `${family} ${name}`).toBe(true);
        }
      }
    }
    expect(answers).toBe(12);
    // Still serving, and a quiet scrape matches the pool exactly.
    expect((await adminCall(t.admin, 'GET', '/healthz')).status).toBe(200);
    const pool = ((await adminCall(t.admin, 'GET', '/upstreams')).body as { name: string }[]).map((u) => u.name);
    const e = await scrape(t);
    expect(upstreamsOf(e, 'tether_upstream_up').sort()).toEqual([...pool].sort());
    expect(upstreamsOf(e, 'tether_connections_active').sort()).toEqual([...pool].sort());
    expect(pool).toHaveLength(UPSTREAMS);
  });
});
