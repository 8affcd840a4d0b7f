/**
 * Several tether processes on one real redis-server: admin changes made on one reach
 * the others within a second, and every instance then routes every key alike.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientAddress, closed, connectAndGreet } from '../helpers/clients.js';
import { membershipOf, routesAlike, spawnInstance, spawnInstances, timeUntil, type Instance } from '../helpers/instances.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { adminCall } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

/** The contract: a change on one instance reaches every other within one second. */
const PROPAGATION_BOUND_MS = 1_000;
const KEYS = Array.from({ length: 1_000 }, (_, i) => `client-${i}`);

let redis: RedisServer;
let upstreams: TestUpstream[];
let instances: Instance[] = [];

beforeAll(async () => {
  redis = await startRedis();
  upstreams = await startUpstreams(['a', 'b', 'c', 'd']);
});
afterAll(async () => {
  await redis?.stop();
  await Promise.all((upstreams ?? []).map((u) => u.close()));
});
afterEach(async () => {
  await Promise.all(instances.map((i) => i.stop()));
  instances = [];
  redis.cli('flushall');
});

function env(): Record<string, string> {
  return { TETHER_STORE: redis.url, TETHER_UPSTREAMS: upstreamList(upstreams.slice(0, 3)) };
}

async function expectSameRoutes(all: readonly Instance[]): Promise<Map<string, string>> {
  const [first, ...rest] = await routesAlike(all.map((i) => i.admin), KEYS);
  for (const other of rest) expect(other).toEqual(first);
  return first!;
}

/** Time from now until every instance in `all` shows `expected` as its membership. */
function timeUntilMembership(all: readonly Instance[], expected: readonly string[]): Promise<number> {
  return timeUntil(
    async () => (await Promise.all(all.map((i) => membershipOf(i.admin)))).every((m) => JSON.stringify(m) === JSON.stringify(expected)),
    15_000,
    `membership ${expected.join(' ')}`,
  );
}

const view = (name: string, state = 'up', weight = 1): string => {
  const u = upstreams.find((x) => x.name === name)!;
  return `${name}@${u.address}*${weight}:${state}`;
};

describe('shared membership through Redis', () => {
  it('DELETE on A: B’s /upstreams and /route show it within a second; A and B route 1,000 keys alike', async () => {
    instances = await spawnInstances(2, env());
    const [a, b] = instances as [Instance, Instance];
    const before = await expectSameRoutes(instances);
    expect([...before.values()].some((r) => r.startsWith('b|'))).toBe(true);

    const deleted = await adminCall(a.admin, 'DELETE', '/upstreams/b');
    expect(deleted.status).toBe(200);
    const upstreamsMs = await timeUntil(async () => !(await membershipOf(b.admin)).some((m) => m.startsWith('b@')), 15_000, 'b gone from B');
    const routeMs = await timeUntil(async () => {
      const answer = (await adminCall(b.admin, 'GET', '/route?key=client-1')).body as { candidates: string[] };
      return !answer.candidates.includes('b');
    });
    expect(upstreamsMs).toBeLessThan(PROPAGATION_BOUND_MS);
    expect(routeMs).toBeLessThan(PROPAGATION_BOUND_MS);

    const after = await expectSameRoutes(instances);
    for (const [key, route] of after) {
      expect(route.split('|')[1]!.split(',')).not.toContain('b');
      // Only b's keys moved.
      if (!before.get(key)!.startsWith('b|')) expect(route.split('|')[0]).toBe(before.get(key)!.split('|')[0]);
    }
    // Stored in Redis, under the prefix, for instances yet to come.
    expect(redis.cli('hexists', 'tether:membership:default', 'm:b')).toBe('1');
  });

  it('PUT, drain, undrain on either instance reach the other within a second; routes stay alike', async () => {
    instances = await spawnInstances(2, env());
    const [a, b] = instances as [Instance, Instance];
    const d = upstreams[3]!;

    expect((await adminCall(b.admin, 'PUT', '/upstreams/d', { address: d.address, weight: 2 })).status).toBe(201);
    expect(await timeUntilMembership(instances, [view('a'), view('b'), view('c'), view('d', 'up', 2)])).toBeLessThan(PROPAGATION_BOUND_MS);
    await expectSameRoutes(instances);

    expect((await adminCall(a.admin, 'POST', '/upstreams/a/drain', {})).status).toBe(200);
    expect(await timeUntilMembership(instances, [view('a', 'draining'), view('b'), view('c'), view('d', 'up', 2)])).toBeLessThan(PROPAGATION_BOUND_MS);
    const drained = await expectSameRoutes(instances);
    for (const route of drained.values()) expect(route.startsWith('a|')).toBe(false);

    expect((await adminCall(b.admin, 'POST', '/upstreams/a/undrain')).status).toBe(200);
    expect(await timeUntilMembership(instances, [view('a'), view('b'), view('c'), view('d', 'up', 2)])).toBeLessThan(PROPAGATION_BOUND_MS);
    await expectSameRoutes(instances);

    // Changing d's weight on A (an in-place PUT) reaches B too.
    expect((await adminCall(a.admin, 'PUT', '/upstreams/d', { address: d.address, weight: 5 })).status).toBe(200);
    expect(await timeUntilMembership(instances, [view('a'), view('b'), view('c'), view('d', 'up', 5)])).toBeLessThan(PROPAGATION_BOUND_MS);
    await expectSameRoutes(instances);
  });

  it('an instance started after the changes reads them before it accepts, and routes alike', async () => {
    instances = await spawnInstances(2, env());
    const [a, b] = instances as [Instance, Instance];
    await adminCall(a.admin, 'DELETE', '/upstreams/c');
    await adminCall(b.admin, 'PUT', '/upstreams/d', { address: upstreams[3]!.address });
    await adminCall(a.admin, 'POST', '/upstreams/b/drain', {});
    const expected = [view('a'), view('b', 'draining'), view('d')];
    await timeUntilMembership(instances, expected);

    const c = await spawnInstance(env());
    instances.push(c);
    // Its first answer already has the shared membership: it was applied before listening.
    expect(await membershipOf(c.admin)).toEqual(expected);
    await expectSameRoutes(instances);
  });

  it('SIGHUP keeps the shared changes on top of the file', async () => {
    instances = await spawnInstances(2, env());
    const [a, b] = instances as [Instance, Instance];
    await adminCall(a.admin, 'DELETE', '/upstreams/a');
    await adminCall(a.admin, 'POST', '/upstreams/b/drain', {});
    const expected = [view('b', 'draining'), view('c')];
    await timeUntilMembership(instances, expected);
    b.proc.kill('SIGHUP');
    await b.proc.waitForLog((l) => l.msg === 'configuration reloaded');
    expect(await membershipOf(b.admin)).toEqual(expected);
    await expectSameRoutes(instances);
  });

  it('a drain deadline closes connections on every instance at the same moment', async () => {
    instances = await spawnInstances(2, env());
    const [a, b] = instances as [Instance, Instance];
    // A connection through B whose key hashes to c.
    let held: Awaited<ReturnType<typeof connectAndGreet>> | null = null;
    for (let i = 0; held === null && i < 200; i++) {
      const greeting = await connectAndGreet(b.port, clientAddress(i));
      if (greeting.upstream === 'c') held = greeting;
      else greeting.socket.destroy();
    }
    expect(held).not.toBeNull();
    const drained = await adminCall(a.admin, 'POST', '/upstreams/c/drain', { deadlineS: 1 });
    expect(drained.status).toBe(200);
    // B got the deadline through the store, and closes its own connection to c.
    await closed(held!.socket);
    expect((await membershipOf(b.admin)).includes(view('c', 'draining'))).toBe(true);
  });

  it('concurrent changes of one upstream on two instances settle on one answer everywhere', async () => {
    instances = await spawnInstances(2, env());
    const [a, b] = instances as [Instance, Instance];
    const d = upstreams[3]!;
    await Promise.all([
      ...[1, 2, 3, 4, 5].map((w) => adminCall(a.admin, 'PUT', '/upstreams/d', { address: d.address, weight: w })),
      ...[6, 7, 8, 9, 10].map((w) => adminCall(b.admin, 'PUT', '/upstreams/d', { address: d.address, weight: w })),
    ]);
    await timeUntil(async () => {
      const [ma, mb] = await Promise.all([membershipOf(a.admin), membershipOf(b.admin)]);
      return JSON.stringify(ma) === JSON.stringify(mb);
    }, 15_000, 'A and B to agree');
    const stored = JSON.parse(redis.cli('hget', 'tether:membership:default', 'm:d')) as { member: { weight: number } };
    expect(await membershipOf(a.admin)).toContain(view('d', 'up', stored.member.weight));
    await expectSameRoutes(instances);
  });
});
