/**
 * TETHER_STICK=on in http mode: a session key's first upstream is remembered as a
 * learned pin, stored before the first response reaches the client, so adding an
 * upstream moves no session that has one while new sessions reach it; a pin to a
 * removed upstream is dropped and its key pinned where it goes next; a pinned
 * WebSocket keeps its pin alive. Real http upstreams (node:http, ws) and clients.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseExposition, value } from '../helpers/exposition.js';
import { Cleanups, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.runAll());

/** One keep-alive agent for the whole test: requests of different sessions share connections. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
cleanups.register(async () => agent.destroy());

async function upstream(name: string): Promise<HttpUpstream> {
  const u = await startHttpUpstream(name);
  cleanups.register(() => u.close());
  return u;
}

/** The upstream that answered a request for session `id` (its `x-upstream` header). */
function ask(port: number, id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/s/${id}`, agent, headers: { 'x-session': id } }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.headers['x-upstream'])));
    });
    req.on('error', reject);
  });
}

async function mapSessions(port: number, ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of ids) out.set(id, await ask(port, id));
  return out;
}

async function route(t: RunningTether, key: string): Promise<{ upstream: string; via: string }> {
  return (await adminCall(t.admin, 'GET', `/route?key=${encodeURIComponent(key)}`)).body as { upstream: string; via: string };
}

const sessions = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `session-${from + i}`);

async function stickyTether(names: readonly string[], extra: Record<string, string> = {}): Promise<RunningTether> {
  const ups = await Promise.all(names.map(upstream));
  const t = await startTether({
    TETHER_MODE: 'http',
    TETHER_KEY: 'header:x-session',
    TETHER_UPSTREAMS: ups.map((u) => `${u.name}=${u.address}`).join(','),
    TETHER_HEALTH: 'off',
    TETHER_STICK: 'on',
    ...extra,
  });
  cleanups.register(() => t.close());
  return t;
}

describe('TETHER_STICK=on (http mode)', () => {
  it('200 sessions keep their upstream when one is added; new sessions reach it; /route says learned', async () => {
    const t = await stickyTether(['a', 'b', 'c']);
    const old = sessions(0, 200);
    const before = await mapSessions(t.port, old);
    // Stored before the first response came back: known at once.
    for (const id of old) expect(await route(t, id), id).toEqual(expect.objectContaining({ upstream: before.get(id), via: 'learned' }));

    const d = await upstream('d');
    expect((await adminCall(t.admin, 'PUT', '/upstreams/d', { address: d.address })).status).toBe(201);
    const after = await mapSessions(t.port, old);
    expect(old.filter((id) => after.get(id) !== before.get(id))).toEqual([]);
    const fresh = await mapSessions(t.port, sessions(1000, 200));
    expect([...fresh.values()].filter((u) => u === 'd').length, 'new sessions reaching the new upstream').toBeGreaterThan(20);

    const metrics = parseExposition((await adminCall(t.admin, 'GET', '/metrics')).body as string);
    // The second pass over the old sessions went by their pins.
    expect(value(metrics, 'tether_route_decisions_total', { listener: 'default', via: 'learned' })).toBeGreaterThanOrEqual(200);
  });

  it('a pin to a removed upstream is dropped and its session pinned where it goes next', async () => {
    const t = await stickyTether(['a', 'b', 'c']);
    const ids = sessions(300, 60);
    const before = await mapSessions(t.port, ids);
    expect([...before.values()].filter((u) => u === 'b').length).toBeGreaterThan(5);
    expect((await adminCall(t.admin, 'DELETE', '/upstreams/b')).status).toBe(200);
    const after = await mapSessions(t.port, ids);
    for (const id of ids) {
      if (before.get(id) === 'b') expect(after.get(id), id).not.toBe('b');
      else expect(after.get(id), id).toBe(before.get(id));
      expect(await route(t, id), id).toEqual(expect.objectContaining({ upstream: after.get(id), via: 'learned' }));
    }
  });

  it('a WebSocket upgrade pins its session; a later request of the session follows it after a scale-out', async () => {
    const t = await stickyTether(['a', 'b', 'c']);
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}/chat`, { headers: { 'x-session': 'ws-session' } });
    cleanups.register(async () => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const pinned = await route(t, 'ws-session');
    expect(pinned.via).toBe('learned');
    const d = await upstream('d');
    expect((await adminCall(t.admin, 'PUT', '/upstreams/d', { address: d.address })).status).toBe(201);
    expect(await ask(t.port, 'ws-session')).toBe(pinned.upstream);
  });

  it('without TETHER_STICK an added upstream takes its share of old sessions, and /route says hash', async () => {
    const t = await stickyTether(['a', 'b', 'c'], { TETHER_STICK: 'off' });
    const old = sessions(0, 200);
    const before = await mapSessions(t.port, old);
    const d = await upstream('d');
    expect((await adminCall(t.admin, 'PUT', '/upstreams/d', { address: d.address })).status).toBe(201);
    const after = await mapSessions(t.port, old);
    const moved = old.filter((id) => after.get(id) !== before.get(id));
    expect(moved.length).toBeGreaterThan(20);
    for (const id of moved) expect(after.get(id)).toBe('d');
    expect(await route(t, old[0]!)).toMatchObject({ via: 'hash' });
  });
});
