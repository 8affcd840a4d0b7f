/** A Redis password reaches Redis and nothing else: not logs, not stderr, not `tether check`. */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnInstance } from '../helpers/instances.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { CLI, adminCall } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

const PASSWORD = 'hunter2-Sekrit';
const WRONG = 'wrong-Sekrit-9';

let redis: RedisServer;
let upstreams: TestUpstream[];

beforeAll(async () => {
  redis = await startRedis({ password: PASSWORD });
  upstreams = await startUpstreams(['a', 'b']);
});
afterAll(async () => {
  await redis?.stop();
  await Promise.all((upstreams ?? []).map((u) => u.close()));
});

function everythingSaid(proc: { logs: Record<string, unknown>[]; stderr: string }): string {
  return proc.logs.map((l) => JSON.stringify(l)).join('\n') + proc.stderr;
}

describe('the Redis password', () => {
  it('authenticates, and appears in no log line, even at trace level and through an outage', async () => {
    const url = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
    const instance = await spawnInstance({ TETHER_STORE: url, TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LOG_LEVEL: 'trace' });
    try {
      await instance.proc.waitForLog((l) => l.msg === 'store connected');
      expect((await adminCall(instance.admin, 'POST', '/upstreams/a/drain', {})).status).toBe(200);
      expect(redis.cli('hexists', 'tether:membership:default', 'd:a')).toBe('1');
      await redis.kill();
      await instance.proc.waitForLog((l) => l.msg === 'store unreachable: routing by hash until it returns');
      await redis.restart();
      await instance.proc.waitForLog((l) => l.msg === 'store reachable again', 20_000);
      const connected = instance.proc.logs.find((l) => l.msg === 'store connected')!;
      expect(connected.redis).toBe(`redis://:***@127.0.0.1:${redis.port}`);
    } finally {
      await instance.stop();
    }
    expect(everythingSaid(instance.proc)).not.toContain(PASSWORD);
  });

  it('a wrong one is reported without quoting it; traffic still flows', async () => {
    const url = `redis://:${WRONG}@127.0.0.1:${redis.port}`;
    const instance = await spawnInstance({ TETHER_STORE: url, TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LOG_LEVEL: 'trace' });
    try {
      const warning = await instance.proc.waitForLog((l) => l.msg === 'store unreachable: routing by hash until it returns', 20_000);
      expect(String(warning.error)).toMatch(/WRONGPASS|NOAUTH|invalid/i);
      expect((await adminCall(instance.admin, 'GET', '/readyz')).status).toBe(200);
    } finally {
      await instance.stop();
    }
    expect(everythingSaid(instance.proc)).not.toContain(WRONG);
  });

  it('tether check shows it as ***', () => {
    const result = spawnSync(process.execPath, [CLI, 'check'], {
      env: { PATH: process.env.PATH ?? '', TETHER_UPSTREAMS: '127.0.0.1:1', TETHER_STORE: `redis://user:${PASSWORD}@127.0.0.1:6379/2` },
      encoding: 'utf8',
    });
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ store: 'redis://user:***@127.0.0.1:6379/2', redisPrefix: 'tether:' });
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
  });
});
