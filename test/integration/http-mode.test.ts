import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { waitFor } from '../helpers/clients.js';
import { get, RawClient, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { freePort } from '../helpers/upstreams.js';

let upstreams: HttpUpstream[] = [];
let tether: RunningTether | null = null;
const clients: RawClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await tether?.close();
  tether = null;
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

async function start(env: Record<string, string>, logs?: Record<string, unknown>[]): Promise<RunningTether> {
  upstreams = await Promise.all(['a', 'b', 'c'].map((n) => startHttpUpstream(n)));
  tether = await startTether(
    {
      TETHER_MODE: 'http',
      TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','),
      TETHER_HEALTH: 'off',
      ...env,
    },
    logs,
  );
  return tether;
}

function client(port: number): RawClient {
  const c = new RawClient(port);
  clients.push(c);
  return c;
}

/** The upstream a key hashes to now (no pins). */
function hashed(t: RunningTether, key: string): string {
  return t.tether.runtime()!.pool.route(key, 1).candidates[0]!.name;
}

/**
 * Create uploads (POST /create?id=K, no key: balanced by p2c) until two are learned
 * on two different upstreams, each on an upstream its key does not hash to, so only
 * the pin can bring later requests there.
 */
async function twoPinnedKeys(t: RunningTether): Promise<[string, string, string, string]> {
  const c = client(t.port);
  const pinned = new Map<string, string>();
  for (let i = 0; i < 60; i++) {
    const key = `upload-${i}-${Math.random().toString(36).slice(2, 8)}`;
    c.write(`POST /create?id=${key} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi`);
    const res = (await c.response())!;
    expect(res.status).toBe(200);
    const upstream = res.headers['x-upstream']!;
    if (hashed(t, key) === upstream) continue;
    if ([...pinned.values()].includes(upstream)) continue;
    pinned.set(key, upstream);
    if (pinned.size === 2) break;
  }
  expect(pinned.size).toBe(2);
  const [[k1, u1], [k2, u2]] = [...pinned.entries()] as [[string, string], [string, string]];
  return [k1, u1, k2, u2];
}

const LEARN_ENV = { TETHER_KEY: 'path:^/files/([^/?]+)', TETHER_LEARN: 'header:x-upload=(.+)' };

describe('http mode: per-request routing and learned pins', () => {
  it('routes each request on one keep-alive connection by its own key, pins winning over hashing', async () => {
    const t = await start(LEARN_ENV);
    const [k1, u1, k2, u2] = await twoPinnedKeys(t);
    for (const [key, upstream] of [[k1, u1], [k2, u2]] as const) {
      const route = (await adminCall(t.admin, 'GET', `/route?key=${key}`)).body as { upstream: string; via: string };
      expect(route).toMatchObject({ upstream, via: 'learned' });
    }
    const c = client(t.port);
    for (let i = 0; i < 10; i++) {
      const [key, upstream] = i % 2 === 0 ? [k1, u1] : [k2, u2];
      c.write(`PATCH /files/${key} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nchunk`);
      const res = (await c.response())!;
      expect(res.status).toBe(200);
      expect(res.headers['x-upstream']).toBe(upstream);
      expect(res.body).toBe(`${upstream} PATCH /files/${key} 5\n`);
    }
    expect(c.ended).toBe(false);
  });

  it('answers pipelined requests in order, each from its own upstream', async () => {
    const t = await start(LEARN_ENV);
    const [k1, u1, k2, u2] = await twoPinnedKeys(t);
    const c = client(t.port);
    const order = [k1, k2, k2, k1, k2, k1, k1, k2];
    // One write: every request is in tether's buffer before the first answer.
    c.write(order.map((k, i) => get(`/files/${k}?n=${i}`)).join(''));
    for (let i = 0; i < order.length; i++) {
      const res = (await c.response())!;
      const upstream = order[i] === k1 ? u1 : u2;
      expect(res.body).toBe(`${upstream} GET /files/${order[i]}?n=${i} 0\n`);
    }
  });

  it('without learning the same keys go where they hash', async () => {
    const t = await start({ TETHER_KEY: 'path:^/files/([^/?]+)' });
    const c = client(t.port);
    for (let i = 0; i < 12; i++) {
      const key = `k${i}`;
      c.write(get(`/files/${key}`));
      expect((await c.response())!.headers['x-upstream']).toBe(hashed(t, key));
    }
  });

  it('drops a pin to an upstream that fails, and the request goes to the next upstream', async () => {
    const t = await start(LEARN_ENV);
    const [k1, u1] = await twoPinnedKeys(t);
    const victim = upstreams.find((u) => u.name === u1)!;
    await victim.close();
    const c = client(t.port);
    c.write(get(`/files/${k1}`));
    const res = (await c.response())!;
    expect(res.status).toBe(200);
    expect(res.headers['x-upstream']).not.toBe(u1);
    const route = (await adminCall(t.admin, 'GET', `/route?key=${k1}`)).body as { via: string };
    expect(route.via).toBe('hash');
  });

  it('a draining upstream still receives its pins, and no new keys', async () => {
    const t = await start(LEARN_ENV);
    const [k1, u1] = await twoPinnedKeys(t);
    expect((await adminCall(t.admin, 'POST', `/upstreams/${u1}/drain`, {})).status).toBe(200);
    const c = client(t.port);
    c.write(get(`/files/${k1}`));
    expect((await c.response())!.headers['x-upstream']).toBe(u1);
    for (let i = 0; i < 30; i++) {
      c.write(get(`/files/fresh-${i}`));
      expect((await c.response())!.headers['x-upstream']).not.toBe(u1);
    }
  });

  it('a pin expires TETHER_STICKY_TTL_S after its last use, and use renews it', async () => {
    const t = await start({ ...LEARN_ENV, TETHER_STICKY_TTL_S: '1' });
    const [k1, u1, k2] = await twoPinnedKeys(t);
    const c = client(t.port);
    // k1 used every 400 ms for 2 s: alive throughout; k2 unused: gone.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 400));
      c.write(get(`/files/${k1}`));
      expect((await c.response())!.headers['x-upstream']).toBe(u1);
    }
    expect(((await adminCall(t.admin, 'GET', `/route?key=${k2}`)).body as { via: string }).via).toBe('hash');
    await new Promise((r) => setTimeout(r, 1300));
    expect(((await adminCall(t.admin, 'GET', `/route?key=${k1}`)).body as { via: string }).via).toBe('hash');
  });

  it('keeps a pin alive while a WebSocket routed by it is open', async () => {
    const t = await start({ TETHER_KEY: 'query:sid', TETHER_LEARN: 'set-cookie:sid', TETHER_STICKY_TTL_S: '1' });
    const c = client(t.port);
    c.write(get('/login?sid=S1'));
    const login = (await c.response())!;
    const owner = login.headers['x-upstream']!;
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/live?sid=S1`);
    const greeting = await new Promise<string>((resolve, reject) => {
      ws.once('message', (m) => resolve(String(m)));
      ws.once('error', reject);
    });
    expect(greeting).toBe(owner);
    await new Promise((r) => setTimeout(r, 2500));
    const route = (await adminCall(t.admin, 'GET', '/route?key=S1')).body as { via: string; upstream: string };
    expect(route).toMatchObject({ via: 'learned', upstream: owner });
    ws.close();
  });

  it('counts open client connections, idle keep-alive ones too, against TETHER_MAX_CONNECTIONS: the next is closed unanswered and counted', async () => {
    const t = await start({ TETHER_KEY: 'header:x-session', TETHER_MAX_CONNECTIONS: '3' });
    const kept = [client(t.port), client(t.port), client(t.port)];
    for (const c of kept) {
      c.write('GET / HTTP/1.1\r\nHost: t\r\nx-session: k\r\n\r\n');
      expect((await c.response())!.status).toBe(200);
    }
    // Three idle keep-alive connections hold the limit.
    const extra = client(t.port);
    extra.write('GET / HTTP/1.1\r\nHost: t\r\nx-session: k\r\n\r\n');
    expect(await extra.response()).toBeNull();
    expect(t.tether.runtime()!.listener.counters.outcomes.refused).toBe(1);
    const text = String((await adminCall(t.admin, 'GET', '/metrics')).body);
    expect(text).toMatch(/^tether_connections_total\{[^}]*outcome="refused"[^}]*\} 1$/m);
    // One closes: the next is served.
    kept[0]!.destroy();
    await waitFor(() => t.tether.runtime()!.listener.active === 2, 2_000, 'a slot to free up');
    const next = client(t.port);
    next.write('GET / HTTP/1.1\r\nHost: t\r\nx-session: k\r\n\r\n');
    expect((await next.response())!.status).toBe(200);
  });

  it('answers 503 when no upstream can be reached, 502 when one closes before answering', async () => {
    const dead = await freePort();
    upstreams = [];
    const rude = await startHttpUpstream('rude', (req) => {
      req.socket.destroy();
      return true;
    });
    upstreams.push(rude);
    tether = await startTether({ TETHER_MODE: 'http', TETHER_UPSTREAMS: `dead=127.0.0.1:${dead}`, TETHER_HEALTH: 'off', TETHER_RETRIES: '0' });
    const c = client(tether.port);
    c.write(get('/'));
    const res = (await c.response())!;
    expect(res.status).toBe(503);
    expect(await c.closed()).toBe(true);

    await adminCall(tether.admin, 'PUT', '/upstreams/dead', { address: rude.address });
    const c2 = client(tether.port);
    c2.write(get('/'));
    expect((await c2.response())!.status).toBe(502);

    // An upgrade that cannot reach an upstream also gets its answer.
    await adminCall(tether.admin, 'PUT', '/upstreams/dead', { address: `127.0.0.1:${dead}` });
    const c3 = client(tether.port);
    c3.write(get('/ws', { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' }));
    expect((await c3.response())!.status).toBe(503);
  });

  it('retries the next upstream in hash order when a connect fails', async () => {
    const t = await start({ TETHER_KEY: 'header:x-key', TETHER_RETRIES: '2' });
    const key = 'retry-me';
    const first = hashed(t, key);
    await upstreams.find((u) => u.name === first)!.close();
    const res = await fetch(`http://127.0.0.1:${t.port}/`, { headers: { 'x-key': key } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-upstream')).not.toBe(first);
  });

  it('streams a large request and response body both ways intact', async () => {
    const t = await start({ TETHER_KEY: 'header:x-key' });
    const body = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: t.port, method: 'POST', path: '/big', headers: { 'x-key': 'k', 'transfer-encoding': 'chunked' } }, (r) => {
        let text = '';
        r.on('data', (d: Buffer) => (text += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode!, text }));
      });
      req.on('error', reject);
      for (let off = 0; off < body.length; off += 64 * 1024) req.write(body.subarray(off, off + 64 * 1024));
      req.end();
    });
    expect(res.status).toBe(200);
    expect(res.text).toMatch(new RegExp(` POST /big ${body.length}\\n$`));
  });

  it('forwards an HTTP/1.0 request without Host with the address the client reached as Host, so a strict upstream takes it', async () => {
    // Found by the HTTP head fuzz: tether forwards every request as HTTP/1.1, and a
    // strict HTTP/1.1 server (node:http here) refuses one without Host with 400.
    const t = await start({ TETHER_KEY: 'header:x-key' });
    const c = client(t.port);
    c.write('GET /old HTTP/1.0\r\nX-Key: k\r\n\r\n');
    const res = (await c.response())!;
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/^[abc] GET \/old 0\n$/);
    const seen = upstreams.flatMap((u) => u.seen).find((r) => r.url === '/old')!;
    expect(seen.headers.host).toBe(`127.0.0.1:${t.port}`);
    // A Host the client sent is passed on as it is.
    const c2 = client(t.port);
    c2.write('GET /old2 HTTP/1.0\r\nHost: example.test\r\nX-Key: k\r\n\r\n');
    expect((await c2.response())!.status).toBe(200);
    expect(upstreams.flatMap((u) => u.seen).find((r) => r.url === '/old2')!.headers.host).toBe('example.test');
  });

  it('ends every pipelined request when the client hangs up before they are answered: none left in flight', async () => {
    // Found by the HTTP head fuzz: a request queued behind an unanswered one on the
    // same connection never saw its response close, so it stayed in flight (and on
    // its upstream's active count, which bounded loads and p2c read) for ever.
    upstreams = await Promise.all(
      ['a', 'b', 'c'].map((n) =>
        startHttpUpstream(n, (req, res) => {
          if (!req.url!.startsWith('/slow')) return false;
          setTimeout(() => res.end('slow\n'), 300);
          return true;
        }),
      ),
    );
    tether = await startTether({ TETHER_MODE: 'http', TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','), TETHER_HEALTH: 'off' });
    const t = tether;
    const listener = t.tether.runtime()!.listener as unknown as { inFlight: number };
    for (let i = 0; i < 5; i++) {
      const c = client(t.port);
      c.write(`${get(`/slow${i}`)}${get(`/second${i}`)}${get(`/third${i}`)}`);
      await waitFor(() => upstreams.some((u) => u.seen.some((r) => r.url === `/second${i}`)), 5_000, 'the second request upstream');
      c.destroy();
    }
    await waitFor(() => listener.inFlight === 0, 5_000, 'no request in flight');
    const list = (await adminCall(t.admin, 'GET', '/upstreams')).body as { active: number }[];
    expect(list.map((u) => u.active)).toEqual([0, 0, 0]);
  });

  it('counts learned decisions and never logs a key', async () => {
    const logs: Record<string, unknown>[] = [];
    const t = await start({ ...LEARN_ENV, TETHER_LOG_LEVEL: 'debug' }, logs);
    const [k1, , k2] = await twoPinnedKeys(t);
    const c = client(t.port);
    c.write(get(`/files/${k1}`) + get(`/files/${k2}`));
    await c.response();
    await c.response();
    const metrics = (await adminCall(t.admin, 'GET', '/metrics')).body as string;
    const learned = /tether_route_decisions_total\{listener="default",via="learned"\} (\d+)/.exec(metrics);
    expect(Number(learned?.[1])).toBeGreaterThanOrEqual(2);
    await waitFor(() => logs.some((l) => l.component === 'access' && l.via === 'learned'), 5000, 'access lines');
    const text = JSON.stringify(logs);
    expect(text).not.toContain(k1);
    expect(text).not.toContain(k2);
    expect(text).toContain('keyHash');
  });

  it('on shutdown closes idle keep-alive connections at once and lets a WebSocket run until the drain deadline', async () => {
    const t = await start({ TETHER_KEY: 'query:id' });
    const idle = client(t.port);
    idle.write(get('/?id=1'));
    expect((await idle.response())!.status).toBe(200);
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/ws?id=2`);
    const inbox: string[] = [];
    ws.on('message', (m) => inbox.push(String(m)));
    await waitFor(() => inbox.length === 1, 5000, 'greeting');
    const started = Date.now();
    const shutdown = t.tether.shutdown(1500);
    expect(await idle.closed(1000)).toBe(true);
    // New connections are refused.
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const probe = new RawClient(t.port);
          probe.socket.once('error', () => resolve(true));
          probe.socket.once('connect', () => {
            probe.destroy();
            resolve(false);
          });
        }),
      2000,
      'refusal',
    );
    ws.send('still here');
    await waitFor(() => inbox.includes('still here'), 1000, 'echo during drain');
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    await shutdown;
    await closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    tether = null;
  });
});
