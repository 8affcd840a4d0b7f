import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinDigest } from '../../../../src/store/redis/pins.js';
import { openRedisStore, startRedis, type RedisServer } from '../../../helpers/redis.js';
import { pinStoreSuite } from '../store.suite.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

pinStoreSuite('redis', async () => openRedisStore(redis.url));

describe('Redis pins as stored', () => {
  it('keys are sha256 digests under PREFIX pin:LISTENER:, with the TTL set; no raw key anywhere', async () => {
    const { store, close } = await openRedisStore(redis.url, { TETHER_REDIS_PREFIX: 'app7:' });
    try {
      const secret = 'session-8d1e6f0c-secret';
      await store.pins('web').set(secret, 'app2', 120);
      const keys = redis.cli('--scan', '--pattern', 'app7:*').split('\n');
      expect(keys).toEqual([`app7:pin:web:${pinDigest(secret)}`]);
      expect(keys[0]).toMatch(/^app7:pin:web:[A-Za-z0-9_-]{43}$/);
      expect(redis.cli('get', keys[0]!)).toBe('app2');
      const ttl = Number(redis.cli('ttl', keys[0]!));
      expect(ttl).toBeGreaterThan(100);
      expect(ttl).toBeLessThanOrEqual(120);
      expect(redis.cli('--scan')).not.toContain(secret);

      await store.pins('web').touch(secret, 3_000);
      expect(Number(redis.cli('ttl', keys[0]!))).toBeGreaterThan(2_000);
    } finally {
      await close();
    }
  });

  it('two stores on one Redis share pins; another prefix does not see them', async () => {
    const a = await openRedisStore(redis.url);
    const b = await openRedisStore(redis.url);
    const other = await openRedisStore(redis.url, { TETHER_REDIS_PREFIX: 'elsewhere:' });
    try {
      await a.store.pins('web').set('upload-42', 'app3', 60);
      expect(await b.store.pins('web').get('upload-42')).toBe('app3');
      expect(await other.store.pins('web').get('upload-42')).toBeNull();
      await b.store.pins('web').delete('upload-42');
      expect(await a.store.pins('web').get('upload-42')).toBeNull();
    } finally {
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });
});
