import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MemberRecord, MembershipStore } from '../../../../src/store/types.js';
import { waitFor } from '../../../helpers/clients.js';
import { openRedisStore, startRedis, type OpenStore, type RedisServer } from '../../../helpers/redis.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

interface Heard {
  listener: string;
  from: string;
  version: number;
}

let a: OpenStore;
let b: OpenStore;
let heard: Heard[];
let readies: number;
let probes: number;
let listener: string;
let n = 0;

beforeEach(async () => {
  a = await openRedisStore(redis.url);
  b = await openRedisStore(redis.url);
  heard = [];
  readies = 0;
  probes = 0;
  listener = `web${++n}`;
  b.store.membership.subscribe({
    onChange: (l, from, version) => {
      if (l === 'probe') probes++;
      else heard.push({ listener: l, from, version });
    },
    onReady: () => readies++,
  });
  // Subscribed once a write from A is heard.
  await waitFor(async () => {
    await a.store.membership.write('probe', { upstream: 'x', drain: null });
    return probes > 0;
  }, 10_000, 'B to hear announcements');
});
afterEach(async () => {
  await Promise.all([a.close(), b.close()]);
});

const member = (port: number, by: string): MemberRecord => ({ member: { host: '10.0.0.9', port, weight: 2 }, base: null, by, at: 1 });

describe('Redis membership store', () => {
  it('a write is atomic with its announcement and answers the stored state', async () => {
    const ma: MembershipStore = a.store.membership;
    const after = await ma.write(listener, { upstream: 'd', member: member(4, ma.instanceId), drain: { deadlineAt: 123, by: ma.instanceId, at: 1 } });
    expect(after.version).toBe(1);
    expect(after.members.get('d')).toEqual(member(4, ma.instanceId));
    expect(after.drains.get('d')).toEqual({ deadlineAt: 123, by: ma.instanceId, at: 1 });
    await waitFor(() => heard.length === 1, 10_000, 'the announcement');
    expect(heard).toEqual([{ listener, from: ma.instanceId, version: 1 }]);

    const read = await b.store.membership.load(listener);
    expect(read).toEqual(after);

    const cleared = await ma.write(listener, { upstream: 'd', member: null, drain: null });
    expect(cleared.version).toBe(2);
    expect(cleared.members.size + cleared.drains.size).toBe(0);
    expect(a.store.membership.instanceId).not.toBe(b.store.membership.instanceId);
  });

  it('nothing stored reads as version 0, empty', async () => {
    const empty = await a.store.membership.load('never-written');
    expect(empty.version).toBe(0);
    expect(empty.members.size + empty.drains.size).toBe(0);
  });

  it('restore writes only what is missing, and announces it', async () => {
    const ma = a.store.membership;
    const snapshot = await ma.write(listener, { upstream: 'd', member: member(4, ma.instanceId) });
    expect(await ma.restore(listener, snapshot)).toBe(false);
    redis.cli('del', `tether:membership:${listener}`);
    expect((await b.store.membership.load(listener)).version).toBe(0);
    expect(await ma.restore(listener, snapshot)).toBe(true);
    expect(await b.store.membership.load(listener)).toEqual(snapshot);
    // The write's announcement, then the restore's (same version: the one restored).
    await waitFor(() => heard.length === 2, 10_000, 'the announcement of the restore');
    expect(heard[1]).toEqual({ listener, from: ma.instanceId, version: snapshot.version });
  });

  it('records it cannot read (a person or another version wrote them) are skipped, the rest read', async () => {
    const ma = a.store.membership;
    await ma.write(listener, { upstream: 'good', member: member(5, ma.instanceId) });
    const key = `tether:membership:${listener}`;
    redis.cli('hset', key, 'm:bad', '{not json', 'm:worse', '{"member":{"host":"h","port":70000,"weight":1},"base":null}', 'd:x', '{"deadlineAt":"soon"}', 'm:bad name', '{}', 'junk', '1');
    const read = await b.store.membership.load(listener);
    expect([...read.members.keys()]).toEqual(['good']);
    expect(read.drains.size).toBe(0);
  });

  it('announces a reconnect after Redis restarts', async () => {
    const before = readies;
    await redis.restart();
    await waitFor(() => readies > before, 20_000, 'onReady after the restart');
    expect(await b.store.membership.ready(10_000)).toBe(true);
    // Subscribed again: writes are heard.
    await waitFor(async () => {
      await a.store.membership.write(listener, { upstream: 'x', drain: null }).catch(() => null);
      return heard.some((h) => h.listener === listener);
    }, 20_000, 'announcements after the restart');
  });
});
