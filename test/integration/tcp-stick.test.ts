/**
 * TETHER_STICK=on in tcp mode: a key's first upstream is remembered as a learned pin,
 * so adding an upstream moves no key that has one, while new keys reach it; pins to
 * an upstream that goes away are dropped; two instances share pins through Redis.
 * Real balancers, upstreams and redis-server; the key is the client address.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, mapAddresses, waitFor } from '../helpers/clients.js';
import { parseExposition, value } from '../helpers/exposition.js';
import { membershipOf, routesAlike } from '../helpers/instances.js';
import { closeAll, openConnections } from '../helpers/load.js';
import { startRedis, waitForStore } from '../helpers/redis.js';
import { Cleanups } from '../helpers/http.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { startUpstream, startUpstreams, upstreamList } from '../helpers/upstreams.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.runAll());

/** Closed after the test, last started first. */
function keep<T extends { close(): Promise<void> }>(thing: T): T {
  cleanups.register(() => thing.close());
  return thing;
}

const range = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => clientAddress(from + i));

async function route(t: RunningTether, key: string): Promise<{ upstream: string; via: string }> {
  return (await adminCall(t.admin, 'GET', `/route?key=${encodeURIComponent(key)}`)).body as { upstream: string; via: string };
}

async function addUpstream(t: RunningTether, name: string): Promise<void> {
  const added = keep(await startUpstream(name));
  expect((await adminCall(t.admin, 'PUT', `/upstreams/${name}`, { address: added.address })).status).toBe(201);
}

describe('TETHER_STICK=on (tcp mode)', () => {
  it('200 addresses keep their upstream when one is added; new addresses reach it; /rebalance leaves them; learned decisions are counted', async () => {
    const upstreams = await startUpstreams(['a', 'b', 'c']);
    for (const u of upstreams) keep(u);
    const t = keep(await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_STICK: 'on' }));
    const old = range(0, 200);
    const before = await mapAddresses(t.port, old);
    for (const address of old) expect(before.get(address), address).not.toBeNull();
    // Held open across the scale-out, for /rebalance to consider.
    const held = await openConnections(t.port, 50);
    for (const h of held) expect(h.upstream).toBe(before.get(h.localAddress));

    await addUpstream(t, 'd');
    // Without pins about a quarter of these would now go to d (the test without TETHER_STICK shows it).
    for (const address of old) {
      expect(await route(t, address), address).toEqual(expect.objectContaining({ upstream: before.get(address), via: 'learned' }));
    }
    const after = await mapAddresses(t.port, old);
    const moved = old.filter((a) => after.get(a) !== before.get(a));
    expect(moved).toEqual([]);
    expect((await adminCall(t.admin, 'POST', '/rebalance', { perSecond: 1000 })).body).toMatchObject({ moving: 0 });

    const fresh = await mapAddresses(t.port, range(1000, 200));
    const share = [...fresh.values()].filter((u) => u === 'd').length;
    expect(share, 'new addresses reaching the new upstream').toBeGreaterThan(20);

    const metrics = parseExposition((await adminCall(t.admin, 'GET', '/metrics')).body as string);
    // Each address of the second pass (200) and every held connection (50) went by its pin.
    expect(value(metrics, 'tether_route_decisions_total', { listener: 'default', via: 'learned' })).toBeGreaterThanOrEqual(250);
    await closeAll(held.map((h) => h.socket));
  });

  it('a pin to an upstream that is removed is dropped and its key re-routed (and pinned again)', async () => {
    const upstreams = await startUpstreams(['a', 'b', 'c']);
    for (const u of upstreams) keep(u);
    const t = keep(await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_STICK: 'on' }));
    const clients = range(300, 60);
    const before = await mapAddresses(t.port, clients);
    const onB = clients.filter((a) => before.get(a) === 'b');
    expect(onB.length).toBeGreaterThan(5);
    expect((await adminCall(t.admin, 'DELETE', '/upstreams/b')).status).toBe(200);
    const after = await mapAddresses(t.port, clients);
    for (const address of clients) {
      if (before.get(address) === 'b') expect(after.get(address), address).not.toBe('b');
      else expect(after.get(address), address).toBe(before.get(address));
      expect(await route(t, address), address).toEqual(expect.objectContaining({ upstream: after.get(address), via: 'learned' }));
    }
  });

  it('without TETHER_STICK nothing learns: no learned series, /route says hash, an added upstream takes its share of old keys', async () => {
    const upstreams = await startUpstreams(['a', 'b', 'c']);
    for (const u of upstreams) keep(u);
    const t = keep(await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' }));
    const old = range(0, 200);
    const before = await mapAddresses(t.port, old);
    await addUpstream(t, 'd');
    const after = await mapAddresses(t.port, old);
    const moved = old.filter((a) => after.get(a) !== before.get(a));
    expect(moved.length).toBeGreaterThan(20);
    for (const a of moved) expect(after.get(a)).toBe('d');
    expect(await route(t, old[0]!)).toMatchObject({ via: 'hash' });
    const text = (await adminCall(t.admin, 'GET', '/metrics')).body as string;
    expect(text).toMatch(/tether_route_decisions_total\{listener="default",via="hash"\} \d+/);
    expect(text).not.toMatch(/via="learned"/);
  });

  it('TETHER_STICKY_MAX bounds the memory store: the least recently used pins go, counted', async () => {
    const upstreams = await startUpstreams(['a', 'b', 'c']);
    for (const u of upstreams) keep(u);
    const t = keep(await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_STICK: 'on', TETHER_STICKY_MAX: '50' }));
    const clients = range(0, 200);
    await mapAddresses(t.port, clients, 1);
    const metrics = parseExposition((await adminCall(t.admin, 'GET', '/metrics')).body as string);
    expect(value(metrics, 'tether_pins_evicted_total')).toBe(150);
    expect(await route(t, clients[0]!)).toMatchObject({ via: 'hash' });
    expect(await route(t, clients[199]!)).toMatchObject({ via: 'learned' });
  });

  it('two instances share pins through Redis: a key pinned through one keeps its upstream through the other after a scale-out', async () => {
    const redis = await startRedis();
    cleanups.register(() => redis.stop());
    const upstreams = await startUpstreams(['a', 'b', 'c']);
    for (const u of upstreams) keep(u);
    const env = { TETHER_STORE: redis.url, TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_STICK: 'on' };
    const one = keep(await startTether(env));
    const two = keep(await startTether(env));
    await Promise.all([waitForStore(one.tether), waitForStore(two.tether)]);
    const old = range(0, 100);
    const before = await mapAddresses(one.port, old);
    // Pins are written once the upstream answers, without holding the connection for it.
    await waitFor(async () => (await route(two, old[old.length - 1]!)).via === 'learned', 5_000, 'the pins through the other instance');
    for (const address of old) expect(await route(two, address), address).toEqual(expect.objectContaining({ upstream: before.get(address), via: 'learned' }));

    await addUpstream(one, 'd');
    await waitFor(async () => (await membershipOf(two.admin)).some((m) => m.startsWith('d@')), 5_000, 'the new upstream at the other instance');
    // Its table is built in a worker thread after the membership changes: route once it is.
    const freshAddresses = range(1000, 100);
    await routesAlike([one.admin, two.admin], freshAddresses);
    const after = await mapAddresses(two.port, old);
    expect(old.filter((a) => after.get(a) !== before.get(a))).toEqual([]);
    const fresh = await mapAddresses(two.port, freshAddresses);
    expect([...fresh.values()].filter((u) => u === 'd').length, 'new addresses reaching the new upstream').toBeGreaterThan(10);
    // Shared the other way too: a fresh key pinned through two is known to one.
    const late = clientAddress(5000);
    const [first] = (await mapAddresses(two.port, [late])).values();
    await waitFor(async () => (await route(one, late)).via === 'learned', 5_000, 'a pin made through the second instance');
    expect((await route(one, late)).upstream).toBe(first);
  });
});
