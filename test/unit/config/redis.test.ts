import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { effectiveSettings } from '../../../src/config/effective.js';
import { loadConfig, loadConfigWithWarnings } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'tether-redis-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function file(content: unknown): string {
  const path = join(dir, `config-${++files}.json`);
  writeFileSync(path, JSON.stringify(content));
  return path;
}

const UP = { TETHER_UPSTREAMS: 'a=127.0.0.1:9001' };

function errorOf(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).not.toContain('\n');
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('redis: Sentinel', () => {
  it('the store URL host names the master group (case kept); nodes as strings or {host, port}', () => {
    const config = loadConfig({
      ...UP,
      TETHER_CONFIG: file({
        store: 'redis://:hunter2@MyMaster/3',
        redis: { sentinels: ['10.0.0.1:26379', { host: '10.0.0.2', port: 26380 }, '[fd00::3]:26379'], sentinelPassword: 's3ntinel' },
      }),
    });
    expect(config.store).toEqual({
      kind: 'redis',
      url: 'redis://:hunter2@MyMaster/3',
      redacted: 'redis://:***@MyMaster/3',
      topology: {
        kind: 'sentinel',
        name: 'MyMaster',
        sentinels: [
          { host: '10.0.0.1', port: 26379 },
          { host: '10.0.0.2', port: 26380 },
          { host: 'fd00::3', port: 26379 },
        ],
        sentinelPassword: 's3ntinel',
      },
    });
  });

  it('the URL may come from TETHER_STORE (keeping the password out of the file)', () => {
    const config = loadConfig({ ...UP, TETHER_STORE: 'redis://:pw@mymaster', TETHER_CONFIG: file({ redis: { sentinels: '127.0.0.1:26379' } }) });
    expect(config.store.kind === 'redis' && config.store.topology).toEqual({
      kind: 'sentinel',
      name: 'mymaster',
      sentinels: [{ host: '127.0.0.1', port: 26379 }],
      sentinelPassword: null,
    });
  });

  it('a port in the URL is refused, blaming where the URL came from, password hidden', () => {
    const fromEnv = errorOf({ ...UP, TETHER_STORE: 'redis://:hunter2@mymaster:6379', TETHER_CONFIG: file({ redis: { sentinels: ['h:26379'] } }) });
    expect(fromEnv.variable).toBe('TETHER_STORE');
    expect(fromEnv.message).toMatch(/^TETHER_STORE: "redis:\/\/:\*\*\*@mymaster:6379" is not redis:\/\/\[\[user\]:password@\]MASTER\[\/db\]: with redis.sentinels/);
    const fromFile = errorOf({ ...UP, TETHER_CONFIG: file({ store: 'redis://:hunter2@mymaster:6379', redis: { sentinels: ['h:26379'] } }) });
    expect(fromFile.message).toMatch(/^TETHER_CONFIG: store: "redis:\/\/:\*\*\*@mymaster:6379" is not /);
    for (const error of [fromEnv, fromFile]) expect(error.message).not.toContain('hunter2');
  });

  it('sentinelPassword is never echoed, and needs sentinels', () => {
    for (const bad of [12345, 'two words', '']) {
      const error = errorOf({ ...UP, TETHER_CONFIG: file({ store: 'redis://m', redis: { sentinels: ['h:1'], sentinelPassword: bad } }) });
      expect(error.message).toBe('TETHER_CONFIG: redis.sentinelPassword: "***" is not a password of 1-4096 visible ASCII characters (no spaces)');
    }
    const alone = errorOf({ ...UP, TETHER_CONFIG: file({ store: 'redis://m', redis: { cluster: ['h:1'], sentinelPassword: 'hunter2' } }) });
    expect(alone.message).toBe('TETHER_CONFIG: redis.sentinelPassword: "***" is not set only with sentinels');
  });
});

describe('redis: Cluster', () => {
  it('startup nodes: the URL node first, then the list, without repeats', () => {
    const config = loadConfig({
      ...UP,
      TETHER_STORE: 'redis://:pw@127.0.0.1:7000',
      TETHER_CONFIG: file({ redis: { cluster: ['127.0.0.1:7000', '127.0.0.1:7001', { host: '127.0.0.1', port: '7002' }] } }),
    });
    expect(config.store.kind === 'redis' && config.store.topology).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
        { host: '127.0.0.1', port: 7002 },
      ],
    });
  });

  it('a db other than 0 is refused', () => {
    const error = errorOf({ ...UP, TETHER_STORE: 'redis://:pw@127.0.0.1:7000/2', TETHER_CONFIG: file({ redis: { cluster: ['127.0.0.1:7001'] } }) });
    expect(error.message).toBe('TETHER_STORE: "redis://:***@127.0.0.1:7000/2" is not redis://[[user]:password@]host:port with db 0 or none: Redis Cluster has db 0 only');
    expect(loadConfig({ ...UP, TETHER_STORE: 'redis://127.0.0.1:7000/0', TETHER_CONFIG: file({ redis: { cluster: ['127.0.0.1:7001'] } }) }).store.kind).toBe('redis');
  });
});

describe('redis: validation', () => {
  it.each([
    [{ sentinels: ['h:1'], cluster: ['h:2'] }, 'TETHER_CONFIG: redis.cluster: "cluster" is not either sentinels or cluster, not both'],
    [{ sentinels: [] }, 'TETHER_CONFIG: redis.sentinels: "[]" is not a list of host:port (Sentinel addresses)'],
    [{ cluster: ['nope'] }, 'TETHER_CONFIG: redis.cluster[0]: "nope" is not host:port with a port from 1 to 65535'],
    [{ cluster: [{ host: 'h', port: 0 }] }, 'TETHER_CONFIG: redis.cluster[0]: "h:0" is not host:port with a port from 1 to 65535'],
    [{ sentinel: ['h:1'] }, 'TETHER_CONFIG: redis: "sentinel" is not a known setting (did you mean "sentinels"?)'],
    ['sentinels', 'TETHER_CONFIG: redis: "sentinels" is not an object of Redis options: sentinels, sentinelPassword, cluster'],
  ])('%j', (redis, message) => {
    expect(errorOf({ ...UP, TETHER_CONFIG: file({ store: 'redis://m', redis }) }).message).toBe(message);
  });

  it('Sentinel or Cluster options with the memory store are a warning', () => {
    const { config, warnings } = loadConfigWithWarnings({ ...UP, TETHER_CONFIG: file({ redis: { sentinels: ['h:1'] } }) });
    expect(config.store).toEqual({ kind: 'memory' });
    expect(warnings).toEqual(['redis.sentinels does nothing while the store is memory']);
  });
});

describe('redis: effective settings', () => {
  it('show the topology and the prefix, never a password, and read back the same', () => {
    const path = file({ store: 'redis://:hunter2@mymaster/1', redisPrefix: 'app1:', redis: { sentinels: ['10.0.0.1:26379'], sentinelPassword: 's3ntinel' } });
    const view = effectiveSettings(loadConfig({ ...UP, TETHER_CONFIG: path }));
    const text = JSON.stringify(view);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('s3ntinel');
    expect(view).toMatchObject({
      store: 'redis://:***@mymaster/1',
      redisPrefix: 'app1:',
      redis: { sentinels: ['10.0.0.1:26379'], sentinelPassword: '***' },
    });
    const { configFile: _, ...settings } = view;
    const again = effectiveSettings(loadConfig({ TETHER_CONFIG: file(settings) }));
    expect({ ...again, configFile: view.configFile }).toEqual(view);

    const cluster = effectiveSettings(loadConfig({ ...UP, TETHER_STORE: 'redis://h:7000', TETHER_CONFIG: file({ redis: { cluster: ['h:7001'] } }) }));
    expect(cluster.redis).toEqual({ cluster: ['h:7000', 'h:7001'] });
    expect(effectiveSettings(loadConfig(UP))).toMatchObject({ store: 'memory', redisPrefix: 'tether:' });
    expect(effectiveSettings(loadConfig(UP)).redis).toBeUndefined();
  });
});
