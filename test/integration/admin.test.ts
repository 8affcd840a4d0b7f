import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, connectAndGreet, mapAddresses, waitFor } from '../helpers/clients.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { freePort, startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

let tether: RunningTether | null = null;
let upstreams: TestUpstream[] = [];

afterEach(async () => {
  await tether?.close();
  tether = null;
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

interface UpstreamView {
  name: string;
  address: string;
  weight: number;
  state: string;
  active: number;
  total: number;
}

describe('admin API', () => {
  it('lists, adds, changes, drains, undrains and removes upstreams', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    const [a, b, c] = upstreams as [TestUpstream, TestUpstream, TestUpstream];
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList([a, b]), TETHER_HEALTH: 'off' });
    const admin = tether.admin;

    expect((await adminCall(admin, 'GET', '/healthz')).status).toBe(200);
    expect((await adminCall(admin, 'GET', '/readyz')).status).toBe(200);
    let list = (await adminCall(admin, 'GET', '/upstreams')).body as UpstreamView[];
    expect(list.map((u) => [u.name, u.address, u.weight, u.state])).toEqual([
      ['a', a.address, 1, 'up'],
      ['b', b.address, 1, 'up'],
    ]);

    const held = await connectAndGreet(tether.port, '127.0.0.2');
    list = (await adminCall(admin, 'GET', '/upstreams')).body as UpstreamView[];
    const serving = list.find((u) => u.name === held.upstream)!;
    expect(serving.active).toBe(1);
    expect(serving.total).toBe(1);

    // Add c with weight 3, then change its weight.
    const put = await adminCall(admin, 'PUT', '/upstreams/c', { address: c.address, weight: 3 });
    expect(put.status).toBe(201);
    expect((put.body as UpstreamView).weight).toBe(3);
    expect((await adminCall(admin, 'PUT', '/upstreams/c', { address: c.address, weight: 2 })).status).toBe(200);
    expect(((await adminCall(admin, 'GET', '/upstreams/c')).body as UpstreamView).weight).toBe(2);

    // Drain a: new keys avoid it; undrain brings them back.
    const clients = Array.from({ length: 60 }, (_, i) => clientAddress(i));
    const before = await mapAddresses(tether.port, clients);
    expect(((await adminCall(admin, 'POST', '/upstreams/a/drain', {})).body as UpstreamView).state).toBe('draining');
    const drained = await mapAddresses(tether.port, clients);
    for (const addr of clients) {
      expect(drained.get(addr)).not.toBe('a');
      if (before.get(addr) !== 'a') expect(drained.get(addr)).toBe(before.get(addr));
    }
    expect(((await adminCall(admin, 'GET', '/route?key=127.0.0.2')).body as { upstream: string }).upstream).not.toBe('a');
    await adminCall(admin, 'POST', '/upstreams/a/undrain');
    const undrained = await mapAddresses(tether.port, clients);
    for (const addr of clients) expect(undrained.get(addr)).toBe(before.get(addr));

    // DELETE: gone from the list, its open connections go on.
    const del = await adminCall(admin, 'DELETE', `/upstreams/${held.upstream}`);
    expect(del.status).toBe(200);
    list = (await adminCall(admin, 'GET', '/upstreams')).body as UpstreamView[];
    expect(list.map((u) => u.name)).not.toContain(held.upstream);
    held.socket.write('ping');
    await new Promise<void>((resolve) => held.socket.once('data', () => resolve()));
    held.socket.destroy();
  });

  it('answers bad calls with a status and a JSON error', async () => {
    upstreams = await startUpstreams(['a']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const admin = tether.admin;
    const cases: [string, string, unknown, number][] = [
      ['GET', '/nope', undefined, 404],
      ['DELETE', '/upstreams/missing', undefined, 404],
      ['POST', '/upstreams/missing/drain', {}, 404],
      ['PUT', '/upstreams/x', { address: 'not an address' }, 400],
      ['PUT', '/upstreams/x', { address: '127.0.0.1:70000' }, 400],
      ['PUT', '/upstreams/x', { address: '127.0.0.1:80', weight: 0 }, 400],
      ['PUT', '/upstreams/bad%20name', { address: '127.0.0.1:80' }, 400],
      ['POST', '/upstreams/a/drain', { deadlineS: -1 }, 400],
      ['GET', '/route', undefined, 400],
      ['POST', '/upstreams', undefined, 405],
      ['GET', '/upstreams?listener=nope', undefined, 404],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await adminCall(admin, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(status);
      expect(typeof (res.body as { error: string }).error, `${method} ${path}`).toBe('string');
    }
    const raw = await fetch(`${admin}/upstreams/x`, { method: 'PUT', body: '{oops' });
    expect(raw.status).toBe(400);
  });

  it('requires the bearer token for everything but /healthz and /readyz; a mutating call without it changes nothing', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    const [a, b, c] = upstreams as [TestUpstream, TestUpstream, TestUpstream];
    const token = 'tok-123';
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList([a, b]), TETHER_HEALTH: 'off', TETHER_ADMIN_TOKEN: token });
    const admin = tether.admin;
    expect((await adminCall(admin, 'GET', '/healthz')).status).toBe(200);
    expect((await adminCall(admin, 'GET', '/readyz')).status).toBe(200);

    const state = async (): Promise<string> => {
      const list = (await adminCall(admin, 'GET', '/upstreams', undefined, token)).body as UpstreamView[];
      const routes = await Promise.all(['10.0.0.1', '10.0.0.2', '10.0.0.3'].map(async (k) => (await adminCall(admin, 'GET', `/route?key=${k}`, undefined, token)).body));
      return JSON.stringify([list.map((u) => [u.name, u.address, u.weight, u.state]), routes]);
    };
    const before = await state();
    const mutating: [string, string, unknown?][] = [
      ['PUT', '/upstreams/c', { address: c.address }],
      ['PUT', '/upstreams/a', { address: a.address, weight: 9 }],
      ['PUT', '/upstreams/a?listener=default', { address: c.address }],
      ['DELETE', '/upstreams/a'],
      ['POST', '/upstreams/b/drain', { deadlineS: 0 }],
      ['POST', '/upstreams/b/undrain'],
    ];
    // No header, a wrong token, near misses, the token in the wrong place or scheme.
    const attempts: [string, Record<string, string>, string][] = [
      ['no token', {}, ''],
      ['a wrong token', { authorization: 'Bearer wrong' }, ''],
      ['the token with a suffix', { authorization: `Bearer ${token}x` }, ''],
      ['a prefix of the token', { authorization: `Bearer ${token.slice(0, -1)}` }, ''],
      ['an empty bearer', { authorization: 'Bearer ' }, ''],
      ['Basic instead of Bearer', { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` }, ''],
      ['the bare token', { authorization: token }, ''],
      ['?token= (only the stats page takes it)', {}, `token=${token}`],
    ];
    for (const [method, path, body] of mutating) {
      for (const [how, headers, query] of attempts) {
        const url = `${admin}${path}${query ? `${path.includes('?') ? '&' : '?'}${query}` : ''}`;
        const res = await fetch(url, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
        expect(res.status, `${method} ${path} with ${how}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="tether"');
        expect(((await res.json()) as { code: string }).code).toBe('TETHER_ERR_UNAUTHORIZED');
      }
    }
    expect(await state()).toBe(before);
    expect(tether.tether.runtime()!.pool.list().map((u) => u.name)).toEqual(['a', 'b']);

    // Reads need it too.
    for (const path of ['/upstreams', '/upstreams/a', '/route?key=x', '/metrics', '/stats.json', '/']) {
      expect((await adminCall(admin, 'GET', path)).status, path).toBe(401);
      expect((await adminCall(admin, 'GET', path, undefined, 'wrong')).status, path).toBe(401);
    }
    // With the token, every call works; the scheme's case and the spaces after it do not matter.
    for (const [method, path, body] of mutating) {
      expect((await adminCall(admin, method, path, body, token)).status, `${method} ${path}`).toBeLessThan(300);
    }
    for (const authorization of [`bearer ${token}`, `BEARER ${token}`, `Bearer   ${token}`]) {
      expect((await fetch(`${admin}/upstreams`, { headers: { authorization } })).status, authorization).toBe(200);
    }
    for (const authorization of [`bearer`, `Bearer${token}`, `bearer\t${token}`]) {
      expect((await fetch(`${admin}/upstreams`, { headers: { authorization } })).status, authorization).toBe(401);
    }
    expect(tether.tether.runtime()!.pool.list().map((u) => u.name).sort()).toEqual(['b', 'c']);
  });

  it('/readyz is 503 when no upstream is up', async () => {
    const port = await freePort();
    tether = await startTether({ TETHER_UPSTREAMS: `dead=127.0.0.1:${port}`, TETHER_HEALTH: 'tcp', TETHER_HEALTH_INTERVAL_MS: '100', TETHER_HEALTH_FALL: '2' });
    await waitFor(async () => (await adminCall(tether!.admin, 'GET', '/readyz')).status === 503, 3_000, '/readyz to turn 503');
    expect((await adminCall(tether.admin, 'GET', '/healthz')).status).toBe(200);
    const list = (await adminCall(tether.admin, 'GET', '/upstreams')).body as UpstreamView[];
    expect(list[0]!.state).toBe('down');
  });

  it('drain with a deadline closes what is still open then', async () => {
    upstreams = await startUpstreams(['a']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const held = await connectAndGreet(tether.port);
    let closedAt = 0;
    held.socket.on('close', () => (closedAt = Date.now()));
    const started = Date.now();
    await adminCall(tether.admin, 'POST', '/upstreams/a/drain', { deadlineS: 0.3 });
    await waitFor(() => closedAt > 0, 3_000, 'the drained connection to close');
    expect(closedAt - started).toBeGreaterThanOrEqual(250);
  });
});

describe('access log', () => {
  it('writes one line per closed connection with a key hash, never the key', async () => {
    upstreams = await startUpstreams(['a']);
    const logs: Record<string, unknown>[] = [];
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' }, logs);
    const address = '127.0.0.77';
    const g = await connectAndGreet(tether.port, address);
    g.socket.write('hello');
    await new Promise<void>((resolve) => g.socket.once('data', () => resolve()));
    g.socket.end();
    await waitFor(() => logs.some((l) => l.component === 'access'), 3_000, 'the access line');
    const line = logs.find((l) => l.component === 'access')!;
    expect(line).toMatchObject({ upstream: 'a', keySource: 'source-ip', via: 'hash', fromClient: 5, toClient: 7, outcome: 'ok' });
    expect(line.keyHash).toMatch(/^[0-9a-f]{8}$/);
    expect(typeof line.durationMs).toBe('number');
    expect(String(line.client)).toMatch(/^127\.0\.0\.77:\d+$/);
    // The key appears only as the client address field, never as a key.
    const withoutClient = JSON.stringify(logs.map(({ client: _c, ...rest }) => rest));
    expect(withoutClient).not.toContain(address);
  });
});
