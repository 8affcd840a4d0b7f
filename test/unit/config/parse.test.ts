import { describe, expect, it } from 'vitest';
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
import { escape, message } from './helpers.js';

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
