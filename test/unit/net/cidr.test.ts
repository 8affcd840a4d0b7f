import { describe, expect, it } from 'vitest';
import { parseCidrList } from '../../../src/config/parse.js';
import { addressBytes } from '../../../src/net/address.js';
import { cidrContains } from '../../../src/net/cidr.js';

describe('CIDR matching', () => {
  const cidrs = parseCidrList('T', '127.0.0.1/32,10.0.0.0/8,::1/128,fd00::/8,192.168.1.128/25');
  it.each([
    ['127.0.0.1', true],
    ['127.0.0.2', false],
    ['10.255.1.2', true],
    ['11.0.0.1', false],
    ['::ffff:10.1.2.3', true],
    ['::FFFF:127.0.0.1', true],
    ['::ffff:a01:203', true],
    ['::ffff:11.0.0.1', false],
    ['::1', true],
    ['::2', false],
    ['fd12:3456::1', true],
    ['fe80::1', false],
    ['fe80::1%eth0', false],
    ['192.168.1.200', true],
    ['192.168.1.127', false],
    ['not an address', false],
    ['', false],
  ])('contains %s: %s', (address, inside) => {
    expect(cidrContains(cidrs, address)).toBe(inside);
  });

  it('an empty list contains nothing; /0 contains everything of its family', () => {
    expect(cidrContains([], '127.0.0.1')).toBe(false);
    expect(cidrContains(parseCidrList('T', '0.0.0.0/0'), '203.0.113.9')).toBe(true);
    expect(cidrContains(parseCidrList('T', '0.0.0.0/0'), '2001:db8::1')).toBe(false);
    expect(cidrContains(parseCidrList('T', '2001:db8::/32'), '2001:db8:ffff::1')).toBe(true);
  });

  it('maps addresses to 16 bytes', () => {
    expect(addressBytes('1.2.3.4')).toEqual(addressBytes('::ffff:1.2.3.4'));
    expect(Array.from(addressBytes('1:2:3:4:5:6:7:8')!)).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect(Array.from(addressBytes('::')!)).toEqual(new Array(16).fill(0));
    expect(addressBytes('1.2.3')).toBeNull();
    });
});
