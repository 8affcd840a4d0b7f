/**
 * Redis Sentinel and Redis Cluster, set up through the TETHER_CONFIG file's `redis`
 * object, with real redis-server processes: a master, a replica and a sentinel that
 * fails over; three cluster masters made by `redis-cli --cluster create`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/clients.js';
import { membershipOf, routesAlike } from '../helpers/instances.js';
import { redisCli, startCluster, startRedis, startSentinel, waitForStore, type RedisCluster, type RedisSentinel, type RedisServer } from '../helpers/redis.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

const dir = mkdtempSync(join(tmpdir(), 'tether-topology-'));
const KEYS = Array.from({ length: 300 }, (_, i) => `client-${i}`);
let upstreams: TestUpstream[];
let tethers: RunningTether[] = [];

beforeAll(async () => {
  upstreams = await startUpstreams(['a', 'b', 'c']);
});
afterAll(async () => {
  await Promise.all((upstreams ?? []).map((u) => u.close()));
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(tethers.map((t) => t.close()));
  tethers = [];
});

/** Two in-process balancers configured by one TETHER_CONFIG file. */
async function twoTethers(file: object): Promise<[RunningTether, RunningTether]> {
  const path = join(dir, `config-${Date.now()}.json`);
  writeFileSync(path, JSON.stringify(file));
  // Bursts of hundreds of pin calls at once: a generous bound (the guard's own is tested elsewhere).
  const env = { TETHER_CONFIG: path, TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_STORE_TIMEOUT_MS: '5000' };
  tethers = [await startTether(env), await startTether(env)];
  await Promise.all(tethers.map((t) => waitForStore(t.tether)));
  return tethers as [RunningTether, RunningTether];
}

async function expectShared(a: RunningTether, b: RunningTether, tag: string): Promise<void> {
  const pinsA = a.tether.runtime()!.pins;
  const pinsB = b.tether.runtime()!.pins;
  await Promise.all(KEYS.map((k, i) => pinsA.set(`${tag}-${k}`, ['a', 'b', 'c'][i % 3]!, 60)));
  expect(await Promise.all(KEYS.map((k) => pinsB.get(`${tag}-${k}`)))).toEqual(KEYS.map((_, i) => ['a', 'b', 'c'][i % 3]));
}

describe('Redis Sentinel', () => {
  let master: RedisServer;
  let replica: RedisServer;
  let sentinel: RedisSentinel;

  beforeAll(async () => {
    master = await startRedis();
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    await waitFor(() => replica.cli('info', 'replication').includes('master_link_status:up'), 20_000, 'the replica to sync');
    sentinel = await startSentinel(master.port, 'mymaster');
  });
  afterAll(async () => {
    await sentinel?.stop();
    await replica?.stop();
    await master?.stop();
  });

  it('finds the master through the sentinel, shares pins and membership, and follows a failover', async () => {
    const [a, b] = await twoTethers({ store: 'redis://mymaster/0', redis: { sentinels: [`127.0.0.1:${sentinel.port}`] } });
    await expectShared(a, b, 'before');
    expect(master.cli('dbsize')).not.toBe('0');

    expect((await adminCall(a.admin, 'DELETE', '/upstreams/c')).status).toBe(200);
    await waitFor(async () => !(await membershipOf(b.admin)).some((m) => m.startsWith('c@')), 10_000, 'B to drop c');
    await waitFor(() => replica.cli('hexists', 'tether:membership:default', 'm:c') === '1', 10_000, 'the change replicated');

    // The master dies; the sentinel promotes the replica; both balancers follow it.
    await master.kill();
    await waitFor(
      () => redisCli(sentinel.port, undefined, ['sentinel', 'get-master-addr-by-name', 'mymaster']).includes(String(replica.port)),
      30_000,
      'the sentinel to promote the replica',
      200,
    );
    await waitFor(async () => (await adminCall(a.admin, 'PUT', '/upstreams/c', { address: upstreams[2]!.address })).status === 200, 30_000, 'A to write through the new master', 200);
    await waitFor(async () => (await membershipOf(b.admin)).some((m) => m.startsWith('c@')), 10_000, 'B to see c again');
    expect(replica.cli('role').split('\n')[0]).toBe('master');
    await expectShared(a, b, 'after');
    {
      const [x, y] = await routesAlike([a.admin, b.admin], KEYS);
      expect(x).toEqual(y);
    }
  });
});

describe('Redis Cluster', () => {
  let cluster: RedisCluster;

  beforeAll(async () => {
    cluster = await startCluster(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('spreads pins over the nodes and shares them and membership changes', async () => {
    const [first, ...rest] = cluster.nodes;
    const [a, b] = await twoTethers({
      store: `redis://127.0.0.1:${first!.port}`,
      redis: { cluster: rest.map((n) => `127.0.0.1:${n.port}`) },
    });
    await expectShared(a, b, 'pins');
    // Keys landed on every master (their slots spread the hashed keys).
    for (const node of cluster.nodes) expect(Number(node.cli('dbsize'))).toBeGreaterThan(0);

    expect((await adminCall(b.admin, 'POST', '/upstreams/a/drain', {})).status).toBe(200);
    await waitFor(async () => (await membershipOf(a.admin)).some((m) => m.startsWith('a@') && m.endsWith(':draining')), 10_000, 'A to see a draining');
    expect((await adminCall(a.admin, 'DELETE', '/upstreams/b')).status).toBe(200);
    await waitFor(async () => !(await membershipOf(b.admin)).some((m) => m.startsWith('b@')), 10_000, 'B to drop b');
    {
      const [x, y] = await routesAlike([a.admin, b.admin], KEYS);
      expect(x).toEqual(y);
    }
  });
});
