import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { formatIPv4, formatIPv6, isMappedIPv4, parseIPv4, parseIPv6, sourceIpKey } from '../../../src/net/address.js';
import { seededRandom } from '../../helpers/random.js';

/** Node's own text form of an IPv6 address (inet_pton then libuv's inet_ntop). */
const nodeForm = (address: string): string => new net.SocketAddress({ address, family: 'ipv6' }).address;

const rng = seededRandom;

describe('parseIPv4', () => {
  it.each([
    ['0.0.0.0', 0],
    ['127.0.0.1', 0x7f000001],
    ['255.255.255.255', 0xffffffff],
    ['203.0.113.7', 0xcb007107],
  ])('%s', (text, value) => {
    expect(parseIPv4(text)).toBe(value);
  });

  it.each(['', '1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.256', '01.2.3.4', '1.2.3.04', '1..2.3', '1.2.3.4.', '.1.2.3', '1.2.3.-4', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.a', '1234.1.1.1', '0x1.1.1.1', '::1'])(
    'rejects %j',
    (text) => {
      expect(parseIPv4(text)).toBe(-1);
    },
  );

  it('agrees with net.isIPv4 on random strings', () => {
    const random = rng(4);
    const alphabet = '0123456789.';
    for (let i = 0; i < 20_000; i++) {
      let s = '';
      const len = 1 + Math.floor(random() * 16);
      for (let k = 0; k < len; k++) s += alphabet[Math.floor(random() * alphabet.length)];
      // net.isIPv4 (inet_pton) also refuses leading zeros.
      expect(parseIPv4(s) >= 0, s).toBe(net.isIPv4(s));
    }
  });
});

describe('parseIPv6 and formatIPv6', () => {
  it.each([
    '::',
    '::1',
    '1::',
    '2001:db8::1',
    '2001:DB8:0:0:0:0:0:1',
    '1:0:0:1:0:0:0:1',
    '0:0:0:0:0:1:0:0',
    '::2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7::',
    'fe80::abcd:ef01',
    '::ffff:1.2.3.4',
    '::ffff:0:1.2.3.4',
    '::1.2.3.4',
    '64:ff9b::192.0.2.33',
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255',
  ])('%s reads and is written as Node writes it', (text) => {
    const out = new Uint8Array(16);
    expect(parseIPv6(text, out)).toBe(true);
    expect(formatIPv6(out)).toBe(nodeForm(text));
  });

  it.each([
    '',
    ':',
    ':::',
    '1:2',
    '1::2::3',
    ':1::2',
    '1::2:',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    '::1:2:3:4:5:6:7:8',
    '12345::1',
    'g::1',
    'fe80::1%eth0',
    '1.2.3.4',
    '::1.2.3',
    '::1.2.3.4:5',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::ffff:01.2.3.4',
    ' ::1',
  ])('rejects %j', (text) => {
    expect(parseIPv6(text, new Uint8Array(16))).toBe(false);
  });

  it('round-trips random addresses, with zero runs, through Node', () => {
    const random = rng(6);
    const bytes = new Uint8Array(16);
    const back = new Uint8Array(16);
    for (let i = 0; i < 5_000; i++) {
      for (let k = 0; k < 16; k++) bytes[k] = random() < 0.5 ? 0 : Math.floor(random() * 256);
      if (random() < 0.1) bytes.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 0);
      const text = formatIPv6(bytes);
      expect(nodeForm(text), text).toBe(text);
      expect(parseIPv6(text, back), text).toBe(true);
      expect([...back], text).toEqual([...bytes]);
    }
  });

  it('agrees with net.isIPv6 on random strings', () => {
    const random = rng(7);
    const alphabet = '0123456789abcdefABCDEFg:.';
    const out = new Uint8Array(16);
    for (let i = 0; i < 30_000; i++) {
      let s = random() < 0.5 ? '::' : '';
      const len = 1 + Math.floor(random() * 24);
      for (let k = 0; k < len; k++) s += alphabet[Math.floor(random() * alphabet.length)];
      expect(parseIPv6(s, out), s).toBe(net.isIPv6(s));
    }
  });

  it('tells IPv4-mapped addresses', () => {
    const out = new Uint8Array(16);
    parseIPv6('::ffff:10.0.0.1', out);
    expect(isMappedIPv4(out)).toBe(true);
    expect(formatIPv4(out, 12)).toBe('10.0.0.1');
    parseIPv6('::1.2.3.4', out);
    expect(isMappedIPv4(out)).toBe(false);
  });
});

describe('sourceIpKey', () => {
  it('turns IPv4-mapped addresses into dotted IPv4 and leaves the rest', () => {
    expect(sourceIpKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(sourceIpKey('203.0.113.7')).toBe('203.0.113.7');
    expect(sourceIpKey('2001:db8::1')).toBe('2001:db8::1');
    expect(sourceIpKey('::ffff:1:2')).toBe('::ffff:1:2');
  });
});
