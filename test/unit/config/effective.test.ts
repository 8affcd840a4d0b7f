import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { effectiveSettings } from '../../../src/config/effective.js';
import { loadConfig } from '../../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'tether-effective-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ENV = {
  TETHER_LISTEN: '[::]:7000',
  TETHER_MODE: 'http',
  TETHER_UPSTREAMS: 'db1=10.0.0.1:5432*2,10.0.0.2:5432',
  TETHER_KEY: 'header:X-Session,path:^/u/(\\d{1,9}),source-ip',
  TETHER_LEARN: 'header:Location=/u/(\\d+),set-cookie:sid',
  TETHER_TRUSTED_PROXIES: '10.0.0.0/8,fd00::/8',
  TETHER_ACCEPT_PROXY: 'v2',
  TETHER_STORE: 'redis://:hunter2@127.0.0.1:6379/0',
  TETHER_ADMIN_TOKEN: 'sesame',
  TETHER_HEALTH: 'ws:/live',
};

describe('effectiveSettings', () => {
  it('is JSON in the file format, with secrets hidden', () => {
    const view = effectiveSettings(loadConfig(ENV));
    const text = JSON.stringify(view);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('sesame');
    expect(JSON.parse(text)).toEqual(view);
    expect(view).toMatchObject({
      configFile: null,
      admin: '127.0.0.1:7001',
      adminToken: '***',
      store: 'redis://:***@127.0.0.1:6379/0',
      logLevel: 'info',
      accessLog: true,
    });
    expect(view.listeners).toEqual([
      expect.objectContaining({
        name: 'default',
        listen: '[::]:7000',
        mode: 'http',
        upstreams: [
          { name: 'db1', address: '10.0.0.1:5432', weight: 2 },
          { name: '10.0.0.2:5432', address: '10.0.0.2:5432', weight: 1 },
        ],
        key: ['header:x-session', 'path:^/u/(\\d{1,9})', 'source-ip'],
        learn: ['header:location=/u/(\\d+)', 'set-cookie:sid'],
        trustedProxies: ['10.0.0.0/8', 'fd00::/8'],
        health: 'ws:/live',
        balanceFactor: 0,
      }),
    ]);
    expect(effectiveSettings(loadConfig({ ...ENV, TETHER_ADMIN: 'off', TETHER_ADMIN_TOKEN: '', TETHER_STORE: '' }))).toMatchObject({
      admin: 'off',
      adminToken: null,
      store: 'memory',
    });
  });

  it('reads back as a config file giving the same settings', () => {
    const view = effectiveSettings(loadConfig(ENV));
    const { configFile: _, ...settings } = view;
    const path = join(dir, 'effective.json');
    writeFileSync(path, JSON.stringify(settings));
    const again = effectiveSettings(loadConfig({ TETHER_CONFIG: path }));
    expect({ ...again, configFile: null, store: view.store }).toEqual(view);
  });
});
