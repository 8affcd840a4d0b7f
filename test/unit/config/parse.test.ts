import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import {
  formatHostPort,
  parseAdmin,
  parseAdminToken,
  parseBalanceFactor,
  parseBoolean,
  parseCidr,
  parseCidrList,
  parseHealth,
  parseHostPort,
  parseInteger,
  parseListen,
} from '../../../src/config/parse.js';
import { parseKeyChain, parseLearnRules, splitKeyChain, splitLearnRules } from '../../../src/config/parse-keys.js';
import { parseStore, redactRedisUrl } from '../../../src/config/parse-store.js';
import { parseUpstreams } from '../../../src/config/parse-upstreams.js';

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('host:port', () => {
  it.each([
    ['127.0.0.1:7000', '127.0.0.1', 7000],
    ['[::]:7000', '::', 7000],
    ['[::1]:7000', '::1', 7000],
    ['[fd00::1:2]:1', 'fd00::1:2', 1],
    ['localhost:65535', 'localhost', 65535],
    ['db-1.internal.example:5432', 'db-1.internal.example', 5432],
    [' 10.0.0.1:80 ', '10.0.0.1', 80],
  ])('%s', (text, host, port) => {
    expect(parseHostPort('V', text)).toEqual({ host, port });
  });

  it.each([
    ['1.2.3.4:99999', 'V: "1.2.3.4:99999" is not host:port with a port from 1 to 65535'],
    ['1.2.3.4:0', 'V: "1.2.3.4:0" is not host:port with a port from 1 to 65535'],
    ['1.2.3.4', 'V: "1.2.3.4" is not host:port with a port from 1 to 65535'],
    ['1.2.3.4:http', 'V: "1.2.3.4:http" is not host:port with a port from 1 to 65535'],
    ['::1:7000', 'V: "::1:7000" is not host:port with an IPv6 host in brackets, e.g. [::1]:7000'],
    ['fe80::1', 'V: "fe80::1" is not host:port with an IPv6 host in brackets'],
    ['[1.2.3.4]:80', 'V: "[1.2.3.4]:80" is not host:port with a valid host name or IP address'],
    ['1.2.3.999:80', 'V: "1.2.3.999:80" is not host:port with a valid host name or IP address'],
    ['bad host:80', 'V: "bad host:80" is not host:port with a valid host name or IP address'],
    [':7000', 'V: ":7000" is not host:port with a host before the port'],
  ])('%s is refused', (text, start) => {
    expect(message(() => parseHostPort('V', text))).toMatch(new RegExp(`^${escape(start)}`));
  });

  it('listen addresses: ":port" is 0.0.0.0, port 0 is any free port', () => {
    expect(parseListen('TETHER_LISTEN', ':7000')).toEqual({ host: '0.0.0.0', port: 7000 });
    expect(parseListen('TETHER_LISTEN', '[::]:7000')).toEqual({ host: '::', port: 7000 });
    expect(parseListen('TETHER_LISTEN', '127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(message(() => parseListen('TETHER_LISTEN', '1.2.3.4:99999'))).toBe(
      'TETHER_LISTEN: "1.2.3.4:99999" is not host:port with a port from 1 to 65535 (0: any free port)',
    );
  });

  it('formats IPv6 in brackets', () => {
    expect(formatHostPort({ host: '::', port: 7000 })).toBe('[::]:7000');
    expect(formatHostPort({ host: '10.0.0.1', port: 7000 })).toBe('10.0.0.1:7000');
  });
});

describe('upstreams', () => {
  it('parses names, weights, defaults and spaces', () => {
    expect(parseUpstreams('U', ' db1=10.0.0.1:5432*2 , 10.0.0.2:5432,v6=[::1]:5432*256, [fd00::2]:1')).toEqual([
      { name: 'db1', host: '10.0.0.1', port: 5432, weight: 2 },
      { name: '10.0.0.2:5432', host: '10.0.0.2', port: 5432, weight: 1 },
      { name: 'v6', host: '::1', port: 5432, weight: 256 },
      { name: '[fd00::2]:1', host: 'fd00::2', port: 1, weight: 1 },
    ]);
  });

  it.each([
    ['db1', 'U: "db1" is not [name=]host:port[*weight]'],
    ['a:1,db1', 'U: "db1" is not [name=]host:port[*weight]'],
    ['db1=', 'U: "db1=" is not [name=]host:port[*weight]'],
    ['a=h:70000', 'U: "a=h:70000" is not [name=]host:port[*weight] with a port from 1 to 65535'],
    ['a=h:1*0', 'U: "a=h:1*0" is not [name=]host:port[*weight] with a weight from 1 to 256'],
    ['a=h:1*257', 'U: "a=h:1*257" is not [name=]host:port[*weight] with a weight from 1 to 256'],
    ['a=h:1*x', 'U: "a=h:1*x" is not [name=]host:port[*weight] with a weight from 1 to 256'],
    ['a b=h:1', 'U: "a b=h:1" is not [name=]host:port[*weight] with a name of 1-128 characters'],
    [`${'n'.repeat(129)}=h:1`, 'U: "nnnn'],
    ['=h:1', 'U: "=h:1" is not [name=]host:port[*weight] with a name of'],
    ['a=::1:5432', 'U: "a=::1:5432" is not [name=]host:port[*weight] with an IPv6 host in brackets'],
    ['a=:5432', 'U: "a=:5432" is not [name=]host:port[*weight] with a host before the port'],
    ['a=h:1,a=h:2', 'U: "a" is not a unique upstream name'],
    ['h:1,h:1', 'U: "h:1" is not a unique upstream name'],
    [' , ', 'U: " , " is not a comma list of [name=]host:port[*weight]'],
  ])('%s is refused', (text, start) => {
    expect(message(() => parseUpstreams('U', text))).toMatch(new RegExp(`^${escape(start)}`));
  });
});

describe('key chain', () => {
  it('parses every source; header names lower-cased', () => {
    const chain = parseKeyChain('K', 'header:X-Session-Id, cookie:SID,query:upload_id,path:^/u/([^/]+),source-ip');
    expect(chain.map((k) => k.kind)).toEqual(['header', 'cookie', 'query', 'path', 'source-ip']);
    expect(chain[0]).toEqual({ kind: 'header', name: 'x-session-id' });
    expect(chain[1]).toEqual({ kind: 'cookie', name: 'SID' });
    expect(chain[2]).toEqual({ kind: 'query', name: 'upload_id' });
    const path = chain[3]!;
    expect(path.kind === 'path' && path.source).toBe('^/u/([^/]+)');
    expect(path.kind === 'path' && path.pattern.exec('/u/abc/x')?.[1]).toBe('abc');
  });

  it('keeps commas inside a path regex', () => {
    expect(splitKeyChain('path:^/a{1,3}/(\\d+),source-ip')).toEqual(['path:^/a{1,3}/(\\d+)', 'source-ip']);
    expect(splitKeyChain('path:^/(x|y),z/(.+), header:a')).toEqual(['path:^/(x|y),z/(.+)', 'header:a']);
    const [path] = parseKeyChain('K', 'path:^/a{1,3}/(\\d+)');
    expect(path!.kind === 'path' && path!.pattern.exec('/aa/42')?.[1]).toBe('42');
    // Outside a regex, a stray piece is its own (bad) item.
    expect(message(() => parseKeyChain('K', 'source-ip,heder:x'))).toMatch(/^K: "heder:x" is not one of source-ip, header:NAME/);
  });

  it.each([
    ['nope', 'K: "nope" is not one of source-ip, header:NAME, cookie:NAME, query:NAME, path:REGEX'],
    ['header:', 'K: "header:" is not header:NAME with NAME an HTTP header name'],
    ['header:a b', 'K: "header:a b" is not header:NAME'],
    ['cookie:a;b', 'K: "cookie:a;b" is not cookie:NAME'],
    ['query:a=b', 'K: "query:a=b" is not query:NAME'],
    ['path:^/u/[^/]+', 'K: "path:^/u/[^/]+" is not path:REGEX with a valid regular expression that has a capture group'],
    ['path:(unclosed', 'K: "path:(unclosed" is not path:REGEX'],
    ['path:(?:x)', 'K: "path:(?:x)" is not path:REGEX'],
    [',', 'K: "," is not a comma list of source-ip'],
  ])('%s is refused', (text, start) => {
    expect(message(() => parseKeyChain('K', text))).toMatch(new RegExp(`^${escape(start)}`));
  });
});

describe('learn rules', () => {
  it('parses header and set-cookie rules, with commas in regexes', () => {
    const rules = parseLearnRules('L', 'header:Location=/files/([^/,]+), set-cookie:sid,header:x-a=^(.{1,8})');
    expect(rules.map((r) => (r.kind === 'header' ? [r.kind, r.name, r.source] : [r.kind, r.name]))).toEqual([
      ['header', 'location', '/files/([^/,]+)'],
      ['set-cookie', 'sid'],
      ['header', 'x-a', '^(.{1,8})'],
    ]);
    expect(splitLearnRules('set-cookie:a,set-cookie:b')).toEqual(['set-cookie:a', 'set-cookie:b']);
    expect(parseLearnRules('L', 'none')).toEqual([]);
  });

  it.each([
    ['cookie:sid', 'L: "cookie:sid" is not one of header:NAME=REGEX, set-cookie:NAME'],
    ['header:location', 'L: "header:location" is not header:NAME=REGEX'],
    ['header:location=/files/.+', 'L: "header:location=/files/.+" is not header:NAME=REGEX'],
    ['set-cookie:', 'L: "set-cookie:" is not set-cookie:NAME'],
  ])('%s is refused', (text, start) => {
    expect(message(() => parseLearnRules('L', text))).toMatch(new RegExp(`^${escape(start)}`));
  });
});

describe('CIDRs', () => {
  it('parses IPv4 into the mapped 128-bit form', () => {
    const cidr = parseCidr('T', '10.0.0.0/8');
    expect(cidr.family).toBe(4);
    expect(cidr.prefix).toBe(104);
    expect(Array.from(cidr.bytes)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0]);
    expect(parseCidr('T', '127.0.0.1')).toMatchObject({ family: 4, prefix: 128, source: '127.0.0.1' });
    expect(parseCidr('T', '::1')).toMatchObject({ family: 6, prefix: 128 });
    expect(parseCidr('T', 'fd00::/8')).toMatchObject({ family: 6, prefix: 8 });
    expect(parseCidrList('T', '127.0.0.1/32,10.0.0.0/8,::1/128,fd00::/8').map((c) => c.source)).toEqual([
      '127.0.0.1/32',
      '10.0.0.0/8',
      '::1/128',
      'fd00::/8',
    ]);
    expect(parseCidrList('T', 'none')).toEqual([]);
  });

  it.each([
    ['10.0.0.0/33', 'T: "10.0.0.0/33" is not a CIDR with a prefix length from 0 to 32'],
    ['fd00::/129', 'T: "fd00::/129" is not a CIDR with a prefix length from 0 to 128'],
    ['10.0.0.0/', 'T: "10.0.0.0/" is not a CIDR with a prefix length'],
    ['10.0.0/8', 'T: "10.0.0/8" is not a CIDR like 10.0.0.0/8 or fd00::/8, or an IP address'],
    ['example.com', 'T: "example.com" is not a CIDR like'],
    ['10.0.0.1/8', 'T: "10.0.0.1/8" is not a CIDR network address (did you mean 10.0.0.0/8?)'],
    ['fd00::1/8', 'T: "fd00::1/8" is not a CIDR network address (did you mean fd00::/8?)'],
  ])('%s is refused', (text, start) => {
    expect(message(() => parseCidrList('T', text))).toMatch(new RegExp(`^${escape(start)}`));
  });
});

const STANDALONE = { kind: 'standalone' };

describe('store', () => {
  it.each([
    ['memory', { kind: 'memory' }],
    ['redis://127.0.0.1:6379', { kind: 'redis', url: 'redis://127.0.0.1:6379', redacted: 'redis://127.0.0.1:6379', topology: STANDALONE }],
    ['redis://:s3cret@redis:6379/2', { kind: 'redis', url: 'redis://:s3cret@redis:6379/2', redacted: 'redis://:***@redis:6379/2', topology: STANDALONE }],
    ['rediss://user:pw@[::1]:6380', { kind: 'redis', url: 'rediss://user:pw@[::1]:6380', redacted: 'rediss://user:***@[::1]:6380', topology: STANDALONE }],
    ['redis://localhost', { kind: 'redis', url: 'redis://localhost', redacted: 'redis://localhost', topology: STANDALONE }],
  ])('%s', (text, store) => {
    expect(parseStore('S', text)).toEqual(store);
  });

  it.each([
    ['redis', 'S: "redis" is not memory or redis://[:password@]host:port[/db]'],
    ['http://h:1', 'S: "http://h:1" is not memory'],
    ['redis://:pw@h:1/x', 'S: "redis://:***@h:1/x" is not memory'],
    ['redis://:pw@h:99999', 'S: "redis://:***@h:99999" is not memory'],
    ['redis://:pw@h:1?db=2', 'S: "redis://:***@h:1?db=2" is not memory'],
    ['redis://', 'S: "redis://" is not memory'],
  ])('%s is refused without showing a password', (text, start) => {
    const text2 = message(() => parseStore('S', text));
    expect(text2).toMatch(new RegExp(`^${escape(start)}`));
    expect(text2).not.toContain('pw');
  });

  it('redacts every form of user-info', () => {
    expect(redactRedisUrl('redis://secret@h:1')).toBe('redis://***@h:1');
    expect(redactRedisUrl('redis://:p@ss@h:1/0')).toBe('redis://:***@h:1/0');
    expect(redactRedisUrl('redis://h:1')).toBe('redis://h:1');
  });
});

describe('scalars', () => {
  it('integers take digits only, within range', () => {
    expect(parseInteger('I', '160', 'vnodes')).toBe(160);
    expect(parseInteger('I', '0', 'idleTimeoutMs')).toBe(0);
    expect(parseInteger('I', '0', 'retries')).toBe(0);
    for (const bad of ['0', '10001', '1.5', '-1', '1e3', 'x', '']) {
      expect(message(() => parseInteger('I', bad, 'vnodes'))).toMatch(/^I: ".*" is not an integer from 1 to 10000$/);
    }
    expect(message(() => parseInteger('I', '-1', 'idleTimeoutMs'))).toBe(
      'I: "-1" is not an integer from 0 to 86400000 (0 = never)',
    );
  });

  it('balance factor is 0 or above 1', () => {
    expect(parseBalanceFactor('B', '0')).toBe(0);
    expect(parseBalanceFactor('B', '1.25')).toBe(1.25);
    expect(parseBalanceFactor('B', '2')).toBe(2);
    for (const bad of ['1', '0.5', '-2', 'x', '101', '1e1']) {
      expect(message(() => parseBalanceFactor('B', bad))).toMatch(/^B: ".*" is not 0 \(off\) or a number above 1/);
    }
  });

  it('booleans', () => {
    for (const yes of ['on', 'true', '1', 'ON', 'True']) expect(parseBoolean('A', yes)).toBe(true);
    for (const no of ['off', 'false', '0', 'OFF']) expect(parseBoolean('A', no)).toBe(false);
    expect(message(() => parseBoolean('A', 'yes'))).toBe('A: "yes" is not one of on, off, true, false, 1, 0');
  });

  it('health checks', () => {
    expect(parseHealth('H', 'off')).toEqual({ kind: 'off' });
    expect(parseHealth('H', 'tcp')).toEqual({ kind: 'tcp' });
    expect(parseHealth('H', 'http:/healthz?full=1')).toEqual({ kind: 'http', path: '/healthz?full=1' });
    expect(parseHealth('H', 'ws:/ws')).toEqual({ kind: 'ws', path: '/ws' });
    for (const bad of ['http', 'http:healthz', 'ws:', 'udp', 'http:/a b']) {
      expect(message(() => parseHealth('H', bad))).toMatch(/^H: ".*" is not one of off, tcp, http:PATH, ws:PATH/);
    }
  });

  it('admin address and token', () => {
    expect(parseAdmin('A', 'off')).toBeNull();
    expect(parseAdmin('A', '127.0.0.1:7001')).toEqual({ host: '127.0.0.1', port: 7001 });
    expect(message(() => parseAdmin('A', 'on'))).toBe('A: "on" is not host:port with a port from 1 to 65535 (0: any free port), or off');
    expect(parseAdminToken('T', 'abc.DEF-123')).toBe('abc.DEF-123');
    const text = message(() => parseAdminToken('T', 'has space secret'));
    expect(text).toBe('T: "***" is not a token of 1-4096 visible ASCII characters (no spaces)');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
