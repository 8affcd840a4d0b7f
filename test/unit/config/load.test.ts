import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { ConfigFileError } from '../../../src/config/errors.js';
import { ENV_VARIABLES, jsonErrorOffset } from '../../../src/config/sources.js';
import { bindsOverlap, workersAdvice } from '../../../src/config/checks.js';
import { loadConfig, loadConfigWithWarnings } from '../../../src/config/load.js';
import { effectiveSettings } from '../../../src/config/effective.js';
import type { Config, ListenerConfig } from '../../../src/config/types.js';

const dir = mkdtempSync(join(tmpdir(), 'tether-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** Write a config file; objects become JSON, strings are written as they are. */
function file(content: unknown): string {
  const path = join(dir, `config-${++files}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

const UP = { TETHER_UPSTREAMS: 'a=127.0.0.1:9001,b=127.0.0.1:9002' };

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

const first = (config: Config): ListenerConfig => config.listeners[0]!;

describe('the contract examples', () => {
  it.each([
    [{ TETHER_UPSTREAMS: 'db1' }, 'TETHER_UPSTREAMS: "db1" is not [name=]host:port[*weight]'],
    [{ ...UP, TETHER_HASH: 'nope' }, 'TETHER_HASH: "nope" is not one of ring, maglev, rendezvous, modulo'],
    [{ ...UP, TETHER_LISTEN: '1.2.3.4:99999' }, 'TETHER_LISTEN: "1.2.3.4:99999" is not host:port with a port from 1 to 65535 (0: any free port)'],
  ])('%o', (env, text) => {
    const error = errorOf(env);
    expect(error.message).toBe(text);
    expect(error.code).toBe('TETHER_ERR_CONFIG');
  });

  it('TETHER_UPSTREAMS is required', () => {
    expect(errorOf({}).message).toMatch(/^TETHER_UPSTREAMS: \(unset\) is not a comma list of \[name=\]host:port\[\*weight\]/);
    expect(errorOf({ TETHER_UPSTREAMS: '   ' }).variable).toBe('TETHER_UPSTREAMS');
  });
});

describe('defaults', () => {
  it('are those of the contract', () => {
    const config = loadConfig(UP);
    expect(config).toMatchObject({
      admin: { host: '127.0.0.1', port: 7001 },
      adminToken: null,
      store: { kind: 'memory' },
      storeTimeoutMs: 50,
      stickyMax: 1000000,
      redisPrefix: 'tether:',
      ringThreads: 1,
      workers: 1,
      logLevel: 'info',
      accessLog: true,
      drainTimeoutMs: 30000,
      drainDelayMs: 0,
      configFile: null,
    });
    expect(config.listeners).toHaveLength(1);
    expect(first(config)).toEqual({
      name: 'default',
      listen: { host: '127.0.0.1', port: 7000 },
      mode: 'tcp',
      upstreams: [
        { name: 'a', host: '127.0.0.1', port: 9001, weight: 1 },
        { name: 'b', host: '127.0.0.1', port: 9002, weight: 1 },
      ],
      key: [{ kind: 'source-ip' }],
      hash: 'ring',
      vnodes: 160,
      balanceFactor: 0,
      learn: [],
      stickyTtlS: 3600,
      stick: false,
      inspectBytes: 16384,
      inspectTimeoutMs: 1000,
      proxyProtocol: 'off',
      acceptProxy: 'off',
      trustedProxies: [],
      health: { kind: 'tcp' },
      healthIntervalMs: 2000,
      healthTimeoutMs: 1000,
      healthRise: 2,
      healthFall: 3,
      connectTimeoutMs: 3000,
      retries: 2,
      idleTimeoutMs: 3600000,
      headTimeoutMs: 10000,
      maxHeadBytes: 16384,
      maxConnections: 20000,
    });
  });

  it('the result is deep-frozen', () => {
    const config = loadConfig({ ...UP, TETHER_KEY: 'path:^/(x)', TETHER_MODE: 'http', TETHER_TRUSTED_PROXIES: '10.0.0.0/8' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.listeners)).toBe(true);
    expect(Object.isFrozen(first(config))).toBe(true);
    expect(Object.isFrozen(first(config).upstreams[0])).toBe(true);
    expect(Object.isFrozen(first(config).listen)).toBe(true);
    expect(Object.isFrozen(first(config).key[0])).toBe(true);
    expect(Object.isFrozen(first(config).trustedProxies[0])).toBe(true);
    expect(() => {
      (first(config) as { hash: string }).hash = 'modulo';
    }).toThrow(TypeError);
  });
});

/**
 * Every variable: a good value and what it becomes, a bad value and the start of
 * the message.
 */
const VARIABLES: ReadonlyArray<readonly [string, string, (c: Config) => unknown, unknown, string, string]> = [
  ['TETHER_LISTEN', '[::]:7000', (c) => first(c).listen, { host: '::', port: 7000 }, '::1:7000', 'TETHER_LISTEN: "::1:7000" is not host:port with an IPv6 host in brackets'],
  ['TETHER_MODE', 'http', (c) => first(c).mode, 'http', 'udp', 'TETHER_MODE: "udp" is not one of tcp, http'],
  ['TETHER_UPSTREAMS', 'x=h:1*3', (c) => first(c).upstreams, [{ name: 'x', host: 'h', port: 1, weight: 3 }], 'x=h:1*300', 'TETHER_UPSTREAMS: "x=h:1*300" is not [name=]host:port[*weight] with a weight from 1 to 256'],
  ['TETHER_KEY', 'header:X-Id,source-ip', (c) => first(c).key, [{ kind: 'header', name: 'x-id' }, { kind: 'source-ip' }], 'source-ip,ip', 'TETHER_KEY: "ip" is not one of source-ip, header:NAME, cookie:NAME, query:NAME, path:REGEX'],
  ['TETHER_HASH', 'maglev', (c) => first(c).hash, 'maglev', 'nope', 'TETHER_HASH: "nope" is not one of ring, maglev, rendezvous, modulo'],
  ['TETHER_VNODES', '40', (c) => first(c).vnodes, 40, '0', 'TETHER_VNODES: "0" is not an integer from 1 to 10000'],
  ['TETHER_BALANCE_FACTOR', '1.25', (c) => first(c).balanceFactor, 1.25, '1', 'TETHER_BALANCE_FACTOR: "1" is not 0 (off) or a number above 1'],
  ['TETHER_LEARN', 'set-cookie:sid', (c) => first(c).learn, [{ kind: 'set-cookie', name: 'sid' }], 'header:x=nogroup', 'TETHER_LEARN: "header:x=nogroup" is not header:NAME=REGEX'],
  ['TETHER_STICK', 'on', (c) => first(c).stick, true, 'always', 'TETHER_STICK: "always" is not one of on, off, true, false, 1, 0'],
  ['TETHER_STICKY_MAX', '10', (c) => c.stickyMax, 10, '0', 'TETHER_STICKY_MAX: "0" is not an integer from 1 to 100000000'],
  ['TETHER_INSPECT_BYTES', '4096', (c) => first(c).inspectBytes, 4096, '16', 'TETHER_INSPECT_BYTES: "16" is not an integer from 64 to 1048576'],
  ['TETHER_INSPECT_TIMEOUT_MS', '250', (c) => first(c).inspectTimeoutMs, 250, '0', 'TETHER_INSPECT_TIMEOUT_MS: "0" is not an integer from 1 to 60000'],
  ['TETHER_STICKY_TTL_S', '60', (c) => first(c).stickyTtlS, 60, '0', 'TETHER_STICKY_TTL_S: "0" is not an integer from 1 to 31536000'],
  ['TETHER_STORE', 'redis://:pw@127.0.0.1:6379/1', (c) => c.store, { kind: 'redis', url: 'redis://:pw@127.0.0.1:6379/1', redacted: 'redis://:***@127.0.0.1:6379/1', topology: { kind: 'standalone' } }, 'redis://:pw@h/x', 'TETHER_STORE: "redis://:***@h/x" is not memory or redis://'],
  ['TETHER_REDIS_PREFIX', '{app}:tether:', (c) => c.redisPrefix, '{app}:tether:', 'two words', 'TETHER_REDIS_PREFIX: "two words" is not 1-128 visible ASCII characters (no spaces)'],
  ['TETHER_STORE_TIMEOUT_MS', '5', (c) => c.storeTimeoutMs, 5, '60001', 'TETHER_STORE_TIMEOUT_MS: "60001" is not an integer from 1 to 60000'],
  ['TETHER_PROXY_PROTOCOL', 'v2', (c) => first(c).proxyProtocol, 'v2', 'any', 'TETHER_PROXY_PROTOCOL: "any" is not one of off, v1, v2'],
  ['TETHER_ACCEPT_PROXY', 'any', (c) => first(c).acceptProxy, 'any', 'v3', 'TETHER_ACCEPT_PROXY: "v3" is not one of off, v1, v2, any'],
  ['TETHER_TRUSTED_PROXIES', '10.0.0.0/8, ::1', (c) => first(c).trustedProxies.map((x) => x.source), ['10.0.0.0/8', '::1'], '10.0.0.0/8,10.1.0.0/8', 'TETHER_TRUSTED_PROXIES: "10.1.0.0/8" is not a CIDR network address (did you mean 10.0.0.0/8?)'],
  ['TETHER_HEALTH', 'http:/healthz', (c) => first(c).health, { kind: 'http', path: '/healthz' }, 'http:healthz', 'TETHER_HEALTH: "http:healthz" is not one of off, tcp, http:PATH, ws:PATH'],
  ['TETHER_HEALTH_INTERVAL_MS', '500', (c) => first(c).healthIntervalMs, 500, '1s', 'TETHER_HEALTH_INTERVAL_MS: "1s" is not an integer from 1 to 86400000'],
  ['TETHER_HEALTH_TIMEOUT_MS', '300', (c) => first(c).healthTimeoutMs, 300, '0', 'TETHER_HEALTH_TIMEOUT_MS: "0" is not an integer from 1 to 86400000'],
  ['TETHER_HEALTH_RISE', '1', (c) => first(c).healthRise, 1, '101', 'TETHER_HEALTH_RISE: "101" is not an integer from 1 to 100'],
  ['TETHER_HEALTH_FALL', '5', (c) => first(c).healthFall, 5, '0', 'TETHER_HEALTH_FALL: "0" is not an integer from 1 to 100'],
  ['TETHER_CONNECT_TIMEOUT_MS', '100', (c) => first(c).connectTimeoutMs, 100, '-1', 'TETHER_CONNECT_TIMEOUT_MS: "-1" is not an integer from 1 to 86400000'],
  ['TETHER_RETRIES', '0', (c) => first(c).retries, 0, '11', 'TETHER_RETRIES: "11" is not an integer from 0 to 10'],
  ['TETHER_IDLE_TIMEOUT_MS', '0', (c) => first(c).idleTimeoutMs, 0, 'never', 'TETHER_IDLE_TIMEOUT_MS: "never" is not an integer from 0 to 86400000 (0 = never)'],
  ['TETHER_HEAD_TIMEOUT_MS', '2000', (c) => first(c).headTimeoutMs, 2000, '0', 'TETHER_HEAD_TIMEOUT_MS: "0" is not an integer from 1 to 86400000'],
  ['TETHER_MAX_HEAD_BYTES', '8192', (c) => first(c).maxHeadBytes, 8192, '1023', 'TETHER_MAX_HEAD_BYTES: "1023" is not an integer from 1024 to 1048576'],
  ['TETHER_MAX_CONNECTIONS', '1', (c) => first(c).maxConnections, 1, '1000001', 'TETHER_MAX_CONNECTIONS: "1000001" is not an integer from 1 to 1000000'],
  ['TETHER_DRAIN_TIMEOUT_MS', '0', (c) => c.drainTimeoutMs, 0, '1.5', 'TETHER_DRAIN_TIMEOUT_MS: "1.5" is not an integer from 0 to 86400000'],
  ['TETHER_DRAIN_DELAY_MS', '2000', (c) => c.drainDelayMs, 2000, '-1', 'TETHER_DRAIN_DELAY_MS: "-1" is not an integer from 0 to 86400000 (0 = stop accepting at once)'],
  ['TETHER_ADMIN', 'off', (c) => c.admin, null, 'yes', 'TETHER_ADMIN: "yes" is not host:port with a port from 1 to 65535 (0: any free port), or off'],
  ['TETHER_ADMIN_TOKEN', 'tok-123', (c) => c.adminToken, 'tok-123', 'two words', 'TETHER_ADMIN_TOKEN: "***" is not a token of'],
  ['TETHER_RING_THREADS', '4', (c) => c.ringThreads, 4, '65', 'TETHER_RING_THREADS: "65" is not an integer from 0 to 64 (0 = build on the main thread)'],
  ['TETHER_WORKERS', 'auto', (c) => c.workers, 'auto', '0', 'TETHER_WORKERS: "0" is not auto (one per CPU) or an integer from 1 to 256'],
  ['TETHER_LOG_LEVEL', 'silent', (c) => c.logLevel, 'silent', 'verbose', 'TETHER_LOG_LEVEL: "verbose" is not one of fatal, error, warn, info, debug, trace, silent'],
  ['TETHER_ACCESS_LOG', 'off', (c) => c.accessLog, false, 'maybe', 'TETHER_ACCESS_LOG: "maybe" is not one of on, off, true, false, 1, 0'],
];

describe('every variable', () => {
  it('the table covers every variable', () => {
    // TETHER_NATIVE_HASH is read where hashes are made (hashing/hash.ts), not here.
    expect([...VARIABLES.map(([name]) => name), 'TETHER_CONFIG', 'TETHER_NATIVE_HASH'].sort()).toEqual([...ENV_VARIABLES].sort());
  });

  it.each(VARIABLES)('%s=%s', (name, good, get, value) => {
    expect(get(loadConfig({ ...UP, [name]: good }))).toEqual(value);
  });

  it.each(VARIABLES.map(([name, , , , bad, text]) => [name, bad, text] as const))('%s=%s is refused', (name, bad, text) => {
    const error = errorOf({ ...UP, [name]: bad });
    expect(error.variable).toBe(name);
    expect(error.message.startsWith(text)).toBe(true);
  });

  it('empty and blank values count as unset; values are trimmed', () => {
    const config = loadConfig({ ...UP, TETHER_HASH: '', TETHER_VNODES: '   ', TETHER_MODE: ' http ' });
    expect(first(config).hash).toBe('ring');
    expect(first(config).vnodes).toBe(160);
    expect(first(config).mode).toBe('http');
  });

  it('the store error never shows the password', () => {
    const error = errorOf({ ...UP, TETHER_STORE: 'redis://:hunter2@h:1/x' });
    expect(error.message).toBe('TETHER_STORE: "redis://:***@h:1/x" is not memory or redis://[:password@]host:port[/db]');
  });

  it('[::]:7000 parses to host ::', () => {
    expect(first(loadConfig({ ...UP, TETHER_LISTEN: '[::]:7000' })).listen).toEqual({ host: '::', port: 7000 });
  });
});

describe('first-bytes key sources (tcp mode)', () => {
  it('parse, chain with source-ip, and read back as given', () => {
    const value = 'sni,mqtt:client-id,mqtt:username,rdp-cookie,prefix:^u=(\\w{1,8});,source-ip';
    const config = loadConfig({ ...UP, TETHER_KEY: value });
    expect(first(config).key).toEqual([
      { kind: 'sni' },
      { kind: 'mqtt', field: 'client-id' },
      { kind: 'mqtt', field: 'username' },
      { kind: 'rdp-cookie' },
      { kind: 'prefix', source: '^u=(\\w{1,8});' },
      { kind: 'source-ip' },
    ]);
    expect(effectiveSettings(config).listeners).toMatchObject([{ key: value.split(/,(?=[a-z])/) }]);
  });

  it.each([
    ['mqtt:password', 'TETHER_KEY: "mqtt:password" is not mqtt:client-id or mqtt:username'],
    ['prefix:^(x', 'TETHER_KEY: "prefix:^(x" is not prefix:REGEX with a valid regular expression that has a capture group'],
    ['prefix:^x', 'TETHER_KEY: "prefix:^x" is not prefix:REGEX with a valid regular expression that has a capture group'],
    ['snii', 'TETHER_KEY: "snii" is not one of source-ip'],
  ])('%s is refused', (bad, text) => {
    const error = errorOf({ ...UP, TETHER_KEY: bad });
    expect(error.variable).toBe('TETHER_KEY');
    expect(error.message.startsWith(text)).toBe(true);
  });

  it('a source of the other mode is a warning', () => {
    expect(loadConfigWithWarnings({ ...UP, TETHER_MODE: 'http', TETHER_KEY: 'sni,header:x' }).warnings).toEqual([
      'listener "default": key sources sni need mode tcp; in http mode they yield no key',
    ]);
    expect(loadConfigWithWarnings({ ...UP, TETHER_KEY: 'sni,prefix:^(a),source-ip' }).warnings).toEqual([]);
    expect(loadConfigWithWarnings({ ...UP, TETHER_MODE: 'http', TETHER_STICK: 'on' }).warnings).toEqual([]);
  });
});

describe('warnings', () => {
  it('unknown TETHER_* variables are warnings with a suggestion', () => {
    const { warnings } = loadConfigWithWarnings({ ...UP, TETHER_HSAH: 'ring', TETHER_UPSTREAM: 'x', TETHER_FROB: '1', OTHER: 'x' });
    expect(warnings).toEqual([
      'TETHER_FROB is not a known variable; ignored',
      'TETHER_HSAH is not a known variable (did you mean TETHER_HASH?); ignored',
      'TETHER_UPSTREAM is not a known variable (did you mean TETHER_UPSTREAMS?); ignored',
    ]);
  });

  it('more workers than CPUs', () => {
    expect(workersAdvice(loadConfig({ ...UP, TETHER_WORKERS: '4' }), 2)).toEqual([
      'TETHER_WORKERS is 4 but this host has 2 CPUs: workers beyond one per CPU only compete for cores',
    ]);
    expect(workersAdvice(loadConfig({ ...UP, TETHER_WORKERS: 'auto' }), 8)).toEqual([]);
    expect(workersAdvice(loadConfig({ ...UP, TETHER_WORKERS: '2' }), 2)).toEqual([]);
  });

  it('TETHER_NATIVE_HASH is known (hashing/hash.ts reads it): no warning', () => {
    expect(loadConfigWithWarnings({ ...UP, TETHER_NATIVE_HASH: '0' }).warnings).toEqual([]);
  });

  it('http-only settings in tcp mode, PROXY without trusted senders, an open admin API', () => {
    const { warnings } = loadConfigWithWarnings({
      ...UP,
      TETHER_KEY: 'header:x,source-ip',
      TETHER_LEARN: 'set-cookie:sid',
      TETHER_ACCEPT_PROXY: 'v1',
      TETHER_ADMIN: '0.0.0.0:7001',
    });
    expect(warnings).toEqual([
      'listener "default": key sources header: need mode http; in tcp mode they yield no key',
      'listener "default": learn rules need mode http; in tcp mode they do nothing',
      'listener "default": acceptProxy is v1 but trustedProxies is empty, so every connection will be refused',
      'the admin API on 0.0.0.0:7001 has no TETHER_ADMIN_TOKEN: whoever reaches it can change upstreams',
    ]);
    expect(loadConfigWithWarnings({ ...UP, TETHER_ADMIN: 'off', TETHER_ADMIN_TOKEN: 't' }).warnings).toEqual([
      'TETHER_ADMIN_TOKEN is set but the admin API is off',
    ]);
    expect(loadConfigWithWarnings(UP).warnings).toEqual([]);
  });

  it('key sources that can never be used, learn rules with nothing to carry the key', () => {
    expect(loadConfigWithWarnings({ ...UP, TETHER_MODE: 'http', TETHER_KEY: 'source-ip,cookie:sid' }).warnings).toEqual([
      'listener "default": source-ip always yields a key, so the key sources after it are never used',
    ]);
    expect(loadConfigWithWarnings({ ...UP, TETHER_MODE: 'http', TETHER_LEARN: 'set-cookie:sid' }).warnings).toEqual([
      'listener "default": learn rules are set but the key chain has no header:, cookie:, query: or path: source to carry a learned key',
    ]);
    expect(loadConfigWithWarnings({ ...UP, TETHER_MODE: 'http', TETHER_KEY: 'cookie:sid,source-ip', TETHER_LEARN: 'set-cookie:sid' }).warnings).toEqual([]);
  });
});

describe('address conflicts', () => {
  it('the admin API may not share a listener address', () => {
    expect(errorOf({ ...UP, TETHER_LISTEN: '127.0.0.1:7001' }).message).toBe(
      'TETHER_ADMIN: "127.0.0.1:7001" is not an address of its own (listener "default" listens on 127.0.0.1:7001)',
    );
    expect(errorOf({ ...UP, TETHER_LISTEN: '0.0.0.0:7001' }).variable).toBe('TETHER_ADMIN');
    expect(loadConfig({ ...UP, TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0' }).admin).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it.each([
    ['127.0.0.1:1', '127.0.0.1:1', true],
    ['127.0.0.1:1', '127.0.0.1:2', false],
    ['127.0.0.1:1', '127.0.0.2:1', false],
    ['0.0.0.0:1', '127.0.0.1:1', true],
    ['0.0.0.0:1', 'localhost:1', true],
    ['0.0.0.0:1', '[::1]:1', false],
    ['[::]:1', '127.0.0.1:1', true],
    ['[::]:1', '[::1]:1', true],
    ['[::1]:1', '[0:0::1]:1', true],
    ['LOCALHOST:1', 'localhost:1', true],
    ['127.0.0.1:0', '127.0.0.1:0', false],
  ])('%s and %s overlap: %s', (a, b, overlap) => {
    const parse = (text: string) => {
      const [, host, port] = /^\[?(.*?)\]?:(\d+)$/.exec(text)!;
      return { host: host!, port: Number(port) };
    };
    expect(bindsOverlap(parse(a), parse(b))).toBe(overlap);
    expect(bindsOverlap(parse(b), parse(a))).toBe(overlap);
  });
});

describe('TETHER_CONFIG', () => {
  it('a file that is not there', () => {
    const path = join(dir, 'missing.json');
    expect(errorOf({ ...UP, TETHER_CONFIG: path }).message).toBe(`TETHER_CONFIG: "${path}" is not a readable JSON file (no such file)`);
    expect(errorOf({ ...UP, TETHER_CONFIG: dir }).message).toMatch(/^TETHER_CONFIG: ".*" is not a readable JSON file \(it is a directory\)$/);
  });

  it.each([
    ['{\n  "hash": "ring",\n}\n', 'Expected double-quoted property name at line 3 column 1'],
    ['{\n  "hash": "ring"\n  "vnodes": 1\n}', "Expected ',' or '}' after property value at line 3 column 3"],
    ['{ "hash": tru }', "Unexpected token ' ' at line 1 column 14"],
    ['', 'Unexpected end of JSON input at line 1 column 1'],
    ['{ "listeners": [ \n oops ] }', "Unexpected token 'o' at line 2 column 2"],
    [`{ "a": "${'x'.repeat(40)}", "b": nul }`, "Unexpected token ' ' at line 1 column 60"],
    ['{ "hash": "a\tb" }', 'at line 1 column 13'],
  ])('a file that is not JSON: %j', (content, detail) => {
    const path = file(content);
    const error = errorOf({ ...UP, TETHER_CONFIG: path });
    expect(error.variable).toBe('TETHER_CONFIG');
    expect(error.message).toMatch(new RegExp(`^TETHER_CONFIG: "${path}" is not valid JSON \\(.*${detail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`));
  });

  it('locates JSON errors', () => {
    expect(jsonErrorOffset('{"a": [1, 2, {"b": null}], "c": "\\u00e9"}')).toBe(-1);
    expect(jsonErrorOffset('[1, 2,]')).toBe(6);
    expect(jsonErrorOffset('{"a" 1}')).toBe(5);
    expect(jsonErrorOffset('[01]')).toBe(2);
    expect(jsonErrorOffset('"\\x"')).toBe(1);
  });

  it('a file that is not an object', () => {
    const path = file('[1, 2]');
    expect(errorOf({ ...UP, TETHER_CONFIG: path }).message).toBe(`TETHER_CONFIG: "${path}" is not a JSON object of settings (it holds an array)`);
  });

  it.each([
    [{ listeners: [{ upstreams: 'a:1', hash: 'nope' }] }, 'TETHER_CONFIG: listeners[0].hash: "nope" is not one of ring, maglev, rendezvous, modulo'],
    [{ hash: 'nope' }, 'TETHER_CONFIG: hash: "nope" is not one of ring, maglev, rendezvous, modulo'],
    [{ listeners: [{ upstreams: ['a:1', 'db1'] }] }, 'TETHER_CONFIG: listeners[0].upstreams[1]: "db1" is not [name=]host:port[*weight]'],
    [{ listeners: [{ upstreams: 'a:1,db1' }] }, 'TETHER_CONFIG: listeners[0].upstreams[1]: "db1" is not [name=]host:port[*weight]'],
    [{ listeners: [{ upstreams: ['a:1', { address: 'b:2', weight: 300 }] }] }, 'TETHER_CONFIG: listeners[0].upstreams[1].weight: "300" is not an integer from 1 to 256'],
    [{ listeners: [{ upstreams: [{ name: 'x' }] }] }, 'TETHER_CONFIG: listeners[0].upstreams[0].address: (unset) is not host:port with a port from 1 to 65535'],
    [{ listeners: [{ upstreams: [{ address: 'b:2', wieght: 2 }] }] }, 'TETHER_CONFIG: listeners[0].upstreams[0]: "wieght" is not a known setting (did you mean "weight"?)'],
    [{ listeners: [{ upstreams: [42] }] }, 'TETHER_CONFIG: listeners[0].upstreams[0]: "42" is not an upstream: "[name=]host:port[*weight]" or {"name", "address", "weight"}'],
    [{ listeners: [{ upstreams: ['x=a:1', 'x=b:1'] }] }, 'TETHER_CONFIG: listeners[0].upstreams[1]: "x" is not a unique upstream name'],
    [{ listeners: [{ upstreams: [] }] }, 'TETHER_CONFIG: listeners[0].upstreams: "[]" is not a comma list of [name=]host:port[*weight]'],
    [{ listeners: [{ upstreams: '' }] }, 'TETHER_CONFIG: listeners[0].upstreams: "" is not a comma list of [name=]host:port[*weight]'],
    [{ listeners: [{ upstreams: 'a:1', hsah: 'ring' }] }, 'TETHER_CONFIG: listeners[0]: "hsah" is not a known setting (did you mean "hash"?)'],
    [{ listeners: [{ upstreams: 'a:1', admin: 'off' }] }, 'TETHER_CONFIG: listeners[0]: "admin" is not a listener setting (it is a process setting: put it at the top level)'],
    [{ TETHER_HASH: 'ring' }, 'TETHER_CONFIG: "TETHER_HASH" is not a known setting (did you mean "hash"?)'],
    [{ sticky_ttl_s: 1 }, 'TETHER_CONFIG: "sticky_ttl_s" is not a known setting (did you mean "stickyTtlS"?)'],
    [{ frobnicate: 1 }, 'TETHER_CONFIG: "frobnicate" is not a known setting'],
    [{ vnodes: 1.5 }, 'TETHER_CONFIG: vnodes: "1.5" is not an integer from 1 to 10000'],
    [{ vnodes: true }, 'TETHER_CONFIG: vnodes: "true" is not an integer from 1 to 10000'],
    [{ accessLog: 'sometimes' }, 'TETHER_CONFIG: accessLog: "sometimes" is not one of on, off, true, false, 1, 0'],
    [{ key: [] }, 'TETHER_CONFIG: key: "[]" is not a comma list of source-ip'],
    [{ key: ['path:^/a,b/(x)', 'nope'] }, 'TETHER_CONFIG: key[1]: "nope" is not one of source-ip'],
    [{ trustedProxies: 5 }, 'TETHER_CONFIG: trustedProxies: "5" is not a comma list of CIDRs'],
    [{ listeners: {} }, 'TETHER_CONFIG: listeners: "{}" is not a list of listener objects'],
    [{ listeners: ['pg'] }, 'TETHER_CONFIG: listeners[0]: "pg" is not an object of listener settings'],
    [{ listeners: [{ name: 'a b', upstreams: 'a:1' }] }, 'TETHER_CONFIG: listeners[0].name: "a b" is not a name of 1-64 characters'],
    [{ redis: 'x' }, 'TETHER_CONFIG: redis: "x" is not an object of Redis options'],
    [{ store: 'redis://:pw@h:1/x' }, 'TETHER_CONFIG: store: "redis://:***@h:1/x" is not memory or redis://'],
    [{ adminToken: '' }, 'TETHER_CONFIG: adminToken: "***" is not a token'],
    // A secret of the wrong JSON type is not echoed either (it was, before the fix).
    [{ adminToken: 987654321 }, 'TETHER_CONFIG: adminToken: "***" is not a token'],
    [{ adminToken: ['tok-in-a-list'] }, 'TETHER_CONFIG: adminToken: "***" is not a token'],
    [{ store: { url: 'redis://:hunter2@h:1' } }, 'TETHER_CONFIG: store: "***" is not memory or redis://'],
    [{ redis: 'redis://:hunter2@h:1' }, 'TETHER_CONFIG: redis: "redis://:***@h:1" is not an object of Redis options'],
    [{ redis: ['redis://:hunter2@h:1'] }, 'TETHER_CONFIG: redis: "***" is not an object of Redis options'],
  ])('file errors name the place: %j', (content, text) => {
    const error = errorOf({ TETHER_CONFIG: file(content) });
    expect(error).toBeInstanceOf(ConfigFileError);
    expect(error.variable).toBe('TETHER_CONFIG');
    expect(error.message.startsWith(text)).toBe(true);
  });

  it('every listener after the first needs upstreams and an address of its own', () => {
    expect(errorOf({ TETHER_CONFIG: file({ listeners: [{ upstreams: 'a:1' }, { listen: ':7002' }] }) }).message).toBe(
      'TETHER_CONFIG: listeners[1].upstreams: (unset) is not a list of [name=]host:port[*weight] (every listener needs upstreams)',
    );
    expect(errorOf({ TETHER_CONFIG: file({ upstreams: 'a:1', listeners: [{}, {}] }) }).message).toBe(
      'TETHER_CONFIG: listeners[1].listen: "127.0.0.1:7000" is not an address of its own (listener "default" listens on 127.0.0.1:7000)',
    );
    expect(errorOf({ TETHER_CONFIG: file({ upstreams: 'a:1', listeners: [{ name: 'x' }, { name: 'x', listen: ':1' }] }) }).message).toBe(
      'TETHER_CONFIG: listeners[1].name: "x" is not a unique listener name (listeners[0] has it)',
    );
    expect(errorOf({ TETHER_CONFIG: file({ admin: '127.0.0.1:7000', upstreams: 'a:1' }) }).message).toBe(
      'TETHER_CONFIG: admin: "127.0.0.1:7000" is not an address of its own (listener "default" listens on 127.0.0.1:7000)',
    );
    // The first listener's address from the environment collides with the second's in the file.
    expect(
      errorOf({ TETHER_LISTEN: '[::]:8000', TETHER_CONFIG: file({ upstreams: 'a:1', listeners: [{}, { listen: '127.0.0.1:8000' }] }) }).message,
    ).toBe('TETHER_CONFIG: listeners[1].listen: "127.0.0.1:8000" is not an address of its own (listener "default" listens on [::]:8000)');
  });

  it('several listeners, top-level settings as their defaults', () => {
    const path = file({
      $comment: 'two listeners',
      logLevel: 'warn',
      accessLog: 'off',
      admin: null,
      hash: 'rendezvous',
      retries: '3',
      listeners: [
        {
          name: 'pg',
          listen: '127.0.0.1:6432',
          upstreams: ['db1=10.0.0.1:5432*2', { name: 'db2', address: '10.0.0.2:5432', weight: 1 }, { address: '[fd00::3]:5432' }],
          hash: 'maglev',
          balanceFactor: 1.25,
        },
        {
          listen: ':8080',
          mode: 'http',
          upstreams: 'app1=10.0.1.1:3000, app2=10.0.1.2:3000',
          key: ['header:X-Session', 'path:^/files/([^/,]+)', 'source-ip'],
          learn: 'header:Location=/files/([^/?]+),set-cookie:sid',
          trustedProxies: ['10.0.0.0/8'],
          acceptProxy: 'v2',
          health: 'ws:/healthz',
        },
      ],
    });
    const { config, warnings } = loadConfigWithWarnings({ TETHER_CONFIG: path });
    expect(warnings).toEqual([]);
    expect(config.configFile).toBe(path);
    expect(config.logLevel).toBe('warn');
    expect(config.accessLog).toBe(false);
    expect(config.admin).toBeNull();
    const [pg, web] = config.listeners;
    expect(pg).toMatchObject({ name: 'pg', hash: 'maglev', retries: 3, balanceFactor: 1.25, mode: 'tcp' });
    expect(pg!.upstreams).toEqual([
      { name: 'db1', host: '10.0.0.1', port: 5432, weight: 2 },
      { name: 'db2', host: '10.0.0.2', port: 5432, weight: 1 },
      { name: '[fd00::3]:5432', host: 'fd00::3', port: 5432, weight: 1 },
    ]);
    expect(web).toMatchObject({ name: 'listener-2', hash: 'rendezvous', retries: 3, mode: 'http', listen: { host: '0.0.0.0', port: 8080 } });
    expect(web!.key.map((k) => k.kind)).toEqual(['header', 'path', 'source-ip']);
    expect(web!.learn).toHaveLength(2);
    expect(web!.health).toEqual({ kind: 'ws', path: '/healthz' });
  });

  it('precedence: defaults, then the file, then the environment, which sets the first listener only', () => {
    const path = file({
      hash: 'modulo',
      vnodes: 10,
      logLevel: 'debug',
      storeTimeoutMs: 20,
      listeners: [
        { name: 'one', listen: '127.0.0.1:7100', upstreams: 'a:1', vnodes: 20 },
        { name: 'two', listen: '127.0.0.1:7200', upstreams: 'b:1' },
      ],
    });
    const config = loadConfig({ TETHER_CONFIG: path, TETHER_VNODES: '30', TETHER_HASH: 'ring', TETHER_LOG_LEVEL: 'error', TETHER_UPSTREAMS: 'c:1' });
    const [one, two] = config.listeners;
    expect(one).toMatchObject({ vnodes: 30, hash: 'ring', upstreams: [{ name: 'c:1' }], listen: { port: 7100 } });
    expect(two).toMatchObject({ vnodes: 10, hash: 'modulo', upstreams: [{ name: 'b:1' }], listen: { port: 7200 } });
    expect(config.logLevel).toBe('error');
    expect(config.storeTimeoutMs).toBe(20);
    expect(config.drainTimeoutMs).toBe(30000);
    expect(first(loadConfig({ TETHER_CONFIG: path })).vnodes).toBe(20);
  });

  it('a file without listeners: the environment makes the first from its top level', () => {
    const config = loadConfig({ TETHER_CONFIG: file({ hash: 'maglev', listeners: [] }), ...UP });
    expect(config.listeners).toHaveLength(1);
    expect(first(config)).toMatchObject({ name: 'default', hash: 'maglev' });
    expect(first(loadConfig({ TETHER_CONFIG: file({ upstreams: ['z:1'] }) })).upstreams).toEqual([
      { name: 'z:1', host: 'z', port: 1, weight: 1 },
    ]);
  });

  it('the file gives the first listener its upstreams: TETHER_UPSTREAMS may be unset', () => {
    expect(first(loadConfig({ TETHER_CONFIG: file({ listeners: [{ upstreams: 'a:1' }] }) })).upstreams).toHaveLength(1);
    expect(errorOf({ TETHER_CONFIG: file({ listeners: [{ name: 'x' }] }) }).variable).toBe('TETHER_UPSTREAMS');
  });

  it('a relative path is taken from the working directory and kept absolute', () => {
    const config = loadConfig({ TETHER_CONFIG: 'config/example.json' });
    expect(config.configFile).toBe(join(process.cwd(), 'config/example.json'));
  });

  it('config/example.json is valid', () => {
    const { config, warnings } = loadConfigWithWarnings({ TETHER_CONFIG: new URL('../../../config/example.json', import.meta.url).pathname });
    expect(warnings).toEqual([]);
    expect(config.listeners.map((l) => [l.name, l.mode, l.hash])).toEqual([
      ['pg', 'tcp', 'maglev'],
      ['ws', 'http', 'ring'],
    ]);
  });
});
