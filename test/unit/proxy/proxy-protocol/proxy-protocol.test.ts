import net from 'node:net';
import {
  Command,
  INETProtocol,
  IPv4Address,
  IPv4ProxyAddress,
  IPv6Address,
  IPv6ProxyAddress,
  Peer,
  TransportProtocol,
  V1ProxyProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';
import { describe, expect, it } from 'vitest';
import { buildProxyHeader } from '../../../../src/proxy/proxy-protocol/build.js';
import {
  NEED_MORE,
  V1_MAX_BYTES,
  V2_MAX_BYTES,
  type ProxyAccept,
  type ProxyHeader,
  type ProxyParseResult,
} from '../../../../src/proxy/proxy-protocol/header.js';
import { ProxyHeaderParser } from '../../../../src/proxy/proxy-protocol/parse.js';
import { PROXY_CORPUS, PROXY_DICTIONARY, PROXY_PREFIXES, TLVS, V1_TCP4, V2_TCP4, V2_TCP6_TLV, V4_ADDRS, V6_ADDRS, v2 } from '../../../fixtures/proxy-headers.js';
import { fuzzCase, fuzzSeed, runFuzz } from '../../../helpers/fuzz.js';

const TCP4_HEADER = { command: 'proxy', sourceAddress: '203.0.113.7', sourcePort: 5555, destAddress: '10.0.0.1', destPort: 7000 };

/**
 * Push `input` in chunks of the given sizes (then the rest in one), until an answer
 * other than need-more. `fed` is where the last chunk pushed ended.
 */
function feed(parser: ProxyHeaderParser, input: Buffer, sizes: number[] = [input.length], fed = { at: 0 }): ProxyParseResult[] {
  const answers: ProxyParseResult[] = [];
  let at = 0;
  for (let k = 0; at < input.length; k++) {
    const size = Math.max(1, sizes[k] ?? input.length);
    const result = parser.push(input.subarray(at, at + size));
    answers.push(result);
    at = Math.min(input.length, at + size);
    if (result.kind !== 'more') break;
  }
  fed.at = at;
  return answers;
}

function parse(input: Buffer, accept: ProxyAccept = 'any', sizes?: number[]): ProxyParseResult {
  const answers = feed(new ProxyHeaderParser(accept), input, sizes);
  return answers[answers.length - 1] ?? NEED_MORE;
}

function parseBytewise(input: Buffer, accept: ProxyAccept = 'any'): ProxyParseResult {
  return parse(input, accept, Array.from({ length: input.length }, () => 1));
}

function done(result: ProxyParseResult): { header: ProxyHeader; rest: Buffer } {
  if (result.kind !== 'done') throw new Error(`expected a header, got ${JSON.stringify(result)}`);
  return result;
}

describe('buildProxyHeader', () => {
  const cases = [
    { name: 'IPv4', src: '127.0.0.9', dst: '127.0.0.1', proto: 'TCP4', srcText: '127.0.0.9', dstText: '127.0.0.1' },
    { name: 'IPv6', src: '2001:db8::1', dst: 'fe80::1:2', proto: 'TCP6', srcText: '2001:db8::1', dstText: 'fe80::1:2' },
    { name: 'IPv4-mapped', src: '::ffff:10.1.2.3', dst: '::ffff:127.0.0.1', proto: 'TCP4', srcText: '10.1.2.3', dstText: '127.0.0.1' },
    { name: 'mixed families', src: '10.1.2.3', dst: '2001:db8::5', proto: 'TCP6', srcText: '::ffff:10.1.2.3', dstText: '2001:db8::5' },
  ] as const;

  for (const c of cases) {
    it(`v1 ${c.name} parses with proxy-protocol-js`, () => {
      const header = buildProxyHeader('v1', { address: c.src, port: 40001 }, { address: c.dst, port: 7000 });
      const text = header.toString('latin1');
      expect(text).toBe(`PROXY ${c.proto} ${c.srcText} ${c.dstText} 40001 7000\r\n`);
      const parsed = V1ProxyProtocol.parse(text + 'payload');
      expect(parsed.inetProtocol).toBe(c.proto === 'TCP4' ? INETProtocol.TCP4 : INETProtocol.TCP6);
      expect(parsed.source).toEqual({ ipAddress: c.srcText, port: 40001 });
      expect(parsed.destination).toEqual({ ipAddress: c.dstText, port: 7000 });
      expect(parsed.data).toBe('payload');
      // And with ours.
      expect(done(parse(header)).header).toMatchObject({ version: 1, sourcePort: 40001, destPort: 7000 });
    });

    it(`v2 ${c.name} parses with proxy-protocol-js`, () => {
      const header = buildProxyHeader('v2', { address: c.src, port: 40001 }, { address: c.dst, port: 7000 });
      const parsed = V2ProxyProtocol.parse(new Uint8Array(Buffer.concat([header, Buffer.from('payload')])));
      expect(parsed.command).toBe(Command.PROXY);
      expect(parsed.transportProtocol).toBe(TransportProtocol.STREAM);
      const address = parsed.proxyAddress;
      if (c.proto === 'TCP4') {
        expect(address).toBeInstanceOf(IPv4ProxyAddress);
        const a = address as IPv4ProxyAddress;
        expect(a.sourceAddress.address.join('.')).toBe(c.srcText);
        expect(a.destinationAddress.address.join('.')).toBe(c.dstText);
      } else {
        expect(address).toBeInstanceOf(IPv6ProxyAddress);
        const a = address as IPv6ProxyAddress;
        const text = (bytes: number[]): string => new net.SocketAddress({ address: hex6(bytes), family: 'ipv6' }).address;
        expect(text(a.sourceAddress.address)).toBe(c.srcText);
        expect(text(a.destinationAddress.address)).toBe(c.dstText);
      }
      expect([(address as IPv4ProxyAddress).sourcePort, (address as IPv4ProxyAddress).destinationPort]).toEqual([40001, 7000]);
      expect(Buffer.from(parsed.data ?? []).toString()).toBe('payload');
      const ours = done(parse(header)).header;
      expect(ours).toMatchObject({ version: 2, command: 'proxy', sourcePort: 40001, destPort: 7000 });
    });
  }

  it('sends UNKNOWN (v1) or LOCAL (v2) when an endpoint is not an IP address', () => {
    expect(buildProxyHeader('v1', { address: '', port: 1 }, { address: '127.0.0.1', port: 2 }).toString()).toBe('PROXY UNKNOWN\r\n');
    expect(buildProxyHeader('v1', { address: '127.0.0.1', port: 70000 }, { address: '127.0.0.1', port: 2 }).toString()).toBe('PROXY UNKNOWN\r\n');
    const local = buildProxyHeader('v2', { address: 'x', port: 1 }, { address: '127.0.0.1', port: 2 });
    expect(V2ProxyProtocol.parse(new Uint8Array(local)).command).toBe(Command.LOCAL);
    expect(done(parse(local)).header.command).toBe('local');
  });

  it('writes ports as big-endian 16-bit numbers, 0 and 65535 included', () => {
    const h = buildProxyHeader('v2', { address: '1.2.3.4', port: 65535 }, { address: '5.6.7.8', port: 0 });
    expect(h.length).toBe(28);
    expect(h.readUInt16BE(14)).toBe(12);
    expect(done(parse(h)).header).toMatchObject({ sourcePort: 65535, destPort: 0 });
  });
});

function hex6(bytes: number[]): string {
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
}

describe('ProxyHeaderParser: valid headers', () => {
  const valid: { name: string; input: Buffer; accept: ProxyAccept; header: Partial<ProxyHeader> }[] = [
    { name: 'v1 TCP4', input: V1_TCP4, accept: 'v1', header: { version: 1, ...TCP4_HEADER } as Partial<ProxyHeader> },
    {
      name: 'v1 TCP6 (written back compressed)',
      input: Buffer.from('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::FFFF:10.0.0.1 0 65535\r\n'),
      accept: 'any',
      header: { command: 'proxy', sourceAddress: '2001:db8::1', sourcePort: 0, destAddress: '::ffff:10.0.0.1', destPort: 65535 },
    },
    { name: 'v1 UNKNOWN', input: Buffer.from('PROXY UNKNOWN\r\n'), accept: 'v1', header: { version: 1, command: 'unknown' } },
    {
      name: 'v1 UNKNOWN with addresses (ignored)',
      input: Buffer.from('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:fff 65535 65535\r\n'),
      accept: 'any',
      header: { command: 'unknown', sourceAddress: '' },
    },
    { name: 'v2 TCP4', input: V2_TCP4, accept: 'v2', header: { version: 2, ...TCP4_HEADER } as Partial<ProxyHeader> },
    {
      name: 'v2 TCP6 with TLVs',
      input: V2_TCP6_TLV,
      accept: 'any',
      header: { command: 'proxy', sourceAddress: '2001:db8::1', sourcePort: 1234, destAddress: '2001:db8::2', destPort: 80 },
    },
    { name: 'v2 TCP4 with TLVs', input: v2(0x21, 0x11, [...V4_ADDRS, ...TLVS]), accept: 'v2', header: TCP4_HEADER as Partial<ProxyHeader> },
    { name: 'v2 LOCAL, no addresses', input: v2(0x20, 0x00, []), accept: 'v2', header: { version: 2, command: 'local' } },
    { name: 'v2 LOCAL with addresses (ignored)', input: v2(0x20, 0x11, [...V4_ADDRS, ...TLVS]), accept: 'any', header: { command: 'local' } },
    {
      name: 'v2 LOCAL from proxy-protocol-js (family byte 0x10, ignored)',
      input: Buffer.from(
        new V2ProxyProtocol(
          Command.LOCAL,
          TransportProtocol.UNSPEC,
          new IPv4ProxyAddress(IPv4Address.createFrom([0, 0, 0, 0]), 0, IPv4Address.createFrom([0, 0, 0, 0]), 0),
        ).build(),
      ),
      accept: 'v2',
      header: { version: 2, command: 'local' },
    },
    { name: 'v2 PROXY UNSPEC', input: v2(0x21, 0x00, [1, 2, 3]), accept: 'v2', header: { command: 'unknown' } },
    { name: 'v2 PROXY AF_UNIX', input: v2(0x21, 0x31, new Array<number>(216).fill(0x61)), accept: 'v2', header: { command: 'unknown' } },
    {
      name: 'v2 built by proxy-protocol-js',
      input: Buffer.from(
        new V2ProxyProtocol(
          Command.PROXY,
          TransportProtocol.STREAM,
          new IPv4ProxyAddress(IPv4Address.createFrom([192, 0, 2, 1]), 12345, IPv4Address.createFrom([198, 51, 100, 2]), 443),
        ).build(),
      ),
      accept: 'any',
      header: { command: 'proxy', sourceAddress: '192.0.2.1', sourcePort: 12345, destAddress: '198.51.100.2', destPort: 443 },
    },
    {
      name: 'v2 IPv6 built by proxy-protocol-js',
      input: Buffer.from(
        new V2ProxyProtocol(
          Command.PROXY,
          TransportProtocol.STREAM,
          new IPv6ProxyAddress(
            IPv6Address.createFrom([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            1,
            IPv6Address.createFrom([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 3]),
            2,
          ),
        ).build(),
      ),
      accept: 'v2',
      header: { sourceAddress: 'fe80::9', destAddress: '::ffff:10.0.0.3' },
    },
    {
      name: 'v1 built by proxy-protocol-js',
      input: Buffer.from(new V1ProxyProtocol(INETProtocol.TCP4, new Peer('127.0.0.1', 12345), new Peer('192.0.2.1', 54321)).build()),
      accept: 'v1',
      header: { sourceAddress: '127.0.0.1', sourcePort: 12345, destAddress: '192.0.2.1', destPort: 54321 },
    },
  ];

  for (const c of valid) {
    it(`${c.name}: in one chunk, byte by byte, and with payload behind it`, () => {
      const whole = done(parse(c.input, c.accept));
      expect(whole.header).toMatchObject(c.header);
      expect(whole.rest.length).toBe(0);
      const bytewise = done(parseBytewise(c.input, c.accept));
      expect(bytewise.header).toEqual(whole.header);
      expect(bytewise.rest.length).toBe(0);
      // The payload that shared the last chunk comes back exactly.
      const payload = Buffer.from('\r\nPROXY payload \x00\xff after the header', 'latin1');
      const withPayload = done(parse(Buffer.concat([c.input, payload]), c.accept));
      expect(withPayload.header).toEqual(whole.header);
      expect(withPayload.rest.equals(payload)).toBe(true);
      // Split anywhere: the rest is what followed the header in the chunk that ended it.
      for (let cut = 1; cut < c.input.length; cut++) {
        const split = feed(new ProxyHeaderParser(c.accept), Buffer.concat([c.input, payload]), [cut]);
        expect(split.slice(0, -1).every((r) => r === NEED_MORE)).toBe(true);
        const last = done(split[split.length - 1]!);
        expect(last.header).toEqual(whole.header);
        expect(last.rest.equals(payload)).toBe(true);
      }
    });
  }

  it('tells v1 from v2 by the first byte in any mode', () => {
    expect(done(parse(V1_TCP4, 'any')).header.version).toBe(1);
    expect(done(parse(V2_TCP4, 'any')).header.version).toBe(2);
  });

  it('takes a v1 line of exactly 107 bytes, not 108', () => {
    const line = (n: number): Buffer => Buffer.from(`PROXY UNKNOWN ${'x'.repeat(n - 'PROXY UNKNOWN '.length - 2)}\r\n`);
    expect(line(V1_MAX_BYTES).length).toBe(107);
    expect(parse(line(V1_MAX_BYTES), 'v1').kind).toBe('done');
    expect(parse(line(V1_MAX_BYTES + 1), 'v1').kind).toBe('error');
    // The longest real TCP6 line fits.
    const longest = Buffer.from(
      'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n',
    );
    expect(done(parse(longest)).header.sourcePort).toBe(65535);
  });

  it(`takes a v2 header of exactly ${V2_MAX_BYTES} bytes, and refuses a longer one from its length field`, () => {
    const fill = (total: number): number[] => {
      const value = total - 16 - 12 - 3;
      return [...V4_ADDRS, 0x04, value >> 8, value & 0xff, ...new Array<number>(value).fill(0)];
    };
    expect(done(parse(v2(0x21, 0x11, fill(V2_MAX_BYTES)))).header.sourceAddress).toBe('203.0.113.7');
    const tooLong = v2(0x21, 0x11, fill(V2_MAX_BYTES + 1));
    // Refused once the length is read, without waiting for the body.
    expect(parse(tooLong.subarray(0, 16)).kind).toBe('error');
    expect(parse(v2(0x21, 0x11, [], 0xffff).subarray(0, 16)).kind).toBe('error');
  });

  it('answers an error after it finished, and end() says why a header is missing', () => {
    const parser = new ProxyHeaderParser('any');
    expect(parser.push(V1_TCP4).kind).toBe('done');
    expect(parser.push(Buffer.from('x')).kind).toBe('error');
    expect(new ProxyHeaderParser('any').end()).toEqual({ kind: 'error', reason: 'no PROXY header' });
    const partial = new ProxyHeaderParser('any');
    expect(partial.push(Buffer.alloc(0))).toBe(NEED_MORE);
    expect(partial.started).toBe(false);
    expect(partial.push(V1_TCP4.subarray(0, 10))).toBe(NEED_MORE);
    expect(partial.started).toBe(true);
    expect(partial.end()).toEqual({ kind: 'error', reason: 'truncated PROXY header' });
  });
});

describe('ProxyHeaderParser: malformed and truncated headers are errors', () => {
  const v1 = (line: string): Buffer => Buffer.from(line, 'latin1');
  const malformed: [string, Buffer, ProxyAccept][] = [
    // signatures and versions
    ['HTTP instead of PROXY', v1('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'any'],
    ['lower-case v1', v1('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'any'],
    ['bad v1 signature', v1('PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'v1'],
    ['no space after PROXY', v1('PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'v1'],
    ['bad v2 signature', Buffer.concat([Buffer.from('\r\n\r\n\0\r\nQUIX\n'), Buffer.from([0x21, 0x11, 0, 12]), Buffer.from(V4_ADDRS)]), 'any'],
    ['TLS hello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), 'any'],
    ['v2 to a v1 listener', V2_TCP4, 'v1'],
    ['v1 to a v2 listener', V1_TCP4, 'v2'],
    // v1 framing
    ['v1 too long', v1(`PROXY UNKNOWN ${'a'.repeat(100)}\r\n`), 'v1'],
    ['v1 without CRLF', v1(`PROXY TCP4 1.2.3.4 5.6.7.8 1 2${' '.repeat(100)}`), 'v1'],
    ['v1 LF without CR', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), 'v1'],
    ['v1 CR without LF', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\r\n'), 'v1'],
    ['v1 NUL byte', v1('PROXY TCP4 1.2.3.4\x005.6.7.8 1 2\r\n'), 'v1'],
    ['v1 tab separator', v1('PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n'), 'v1'],
    ['v1 8-bit byte', v1('PROXY TCP4 1.2.3.4 5.6.7.\xb8 1 2\r\n'), 'v1'],
    ['v1 double space', v1('PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n'), 'v1'],
    ['v1 trailing space', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n'), 'v1'],
    ['v1 missing field', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), 'v1'],
    ['v1 extra field', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'), 'v1'],
    ['v1 no protocol', v1('PROXY \r\n'), 'v1'],
    ['v1 unknown protocol', v1('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'), 'v1'],
    ['v1 UDP4', v1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'v1'],
    ['v1 UNKNOWNX', v1('PROXY UNKNOWNX\r\n'), 'v1'],
    // ports
    ['port 65536', v1('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), 'v1'],
    ['port 99999', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n'), 'v1'],
    ['port 123456', v1('PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n'), 'v1'],
    ['negative port', v1('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n'), 'v1'],
    ['port with sign', v1('PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n'), 'v1'],
    ['port with leading zero', v1('PROXY TCP4 1.2.3.4 5.6.7.8 0080 2\r\n'), 'v1'],
    ['port in hex', v1('PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n'), 'v1'],
    ['port as exponent', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1e3 2\r\n'), 'v1'],
    ['port words', v1('PROXY TCP4 1.2.3.4 5.6.7.8 http 2\r\n'), 'v1'],
    // addresses
    ['IPv4 octet 256', v1('PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n'), 'v1'],
    ['IPv4 three parts', v1('PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n'), 'v1'],
    ['IPv4 five parts', v1('PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n'), 'v1'],
    ['IPv4 leading zero', v1('PROXY TCP4 1.2.3.4 05.6.7.8 1 2\r\n'), 'v1'],
    ['IPv6 in TCP4', v1('PROXY TCP4 ::1 5.6.7.8 1 2\r\n'), 'v1'],
    ['IPv4 in TCP6', v1('PROXY TCP6 1.2.3.4 ::1 1 2\r\n'), 'v1'],
    ['IPv6 two gaps', v1('PROXY TCP6 1::2::3 ::1 1 2\r\n'), 'v1'],
    ['IPv6 with zone', v1('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), 'v1'],
    ['IPv6 bad hex', v1('PROXY TCP6 g::1 ::1 1 2\r\n'), 'v1'],
    ['IPv6 long group', v1('PROXY TCP6 12345::1 ::1 1 2\r\n'), 'v1'],
    ['host name', v1('PROXY TCP4 localhost 5.6.7.8 1 2\r\n'), 'v1'],
    // v2 fields
    ['v2 version 1', v2(0x11, 0x11, V4_ADDRS), 'v2'],
    ['v2 version 3', v2(0x31, 0x11, V4_ADDRS), 'v2'],
    ['v2 command 2', v2(0x22, 0x11, V4_ADDRS), 'v2'],
    ['v2 command 15', v2(0x2f, 0x11, V4_ADDRS), 'v2'],
    ['v2 family 4', v2(0x21, 0x41, V4_ADDRS), 'v2'],
    ['v2 transport 3', v2(0x21, 0x13, V4_ADDRS), 'v2'],
    ['v2 UNSPEC family with a transport', v2(0x21, 0x01, V4_ADDRS), 'v2'],
    ['v2 INET without a transport', v2(0x21, 0x10, V4_ADDRS), 'v2'],
    ['v2 datagram', v2(0x21, 0x12, V4_ADDRS), 'v2'],
    ['v2 INET block too short', v2(0x21, 0x11, V4_ADDRS.slice(0, 11)), 'v2'],
    ['v2 INET6 block too short', v2(0x21, 0x21, V6_ADDRS.slice(0, 35)), 'v2'],
    ['v2 AF_UNIX block too short', v2(0x21, 0x31, new Array<number>(215).fill(0)), 'v2'],
    ['v2 longer than the cap', v2(0x21, 0x11, V4_ADDRS, V2_MAX_BYTES), 'v2'],
    ['v2 length 65535', v2(0x21, 0x11, V4_ADDRS, 0xffff), 'any'],
    ['v2 TLV overruns the header', v2(0x21, 0x11, [...V4_ADDRS, 0x01, 0, 5, 0x68, 0x32]), 'v2'],
    ['v2 TLV header cut (1 byte)', v2(0x21, 0x11, [...V4_ADDRS, 0x01]), 'v2'],
    ['v2 TLV header cut (2 bytes)', v2(0x21, 0x11, [...V4_ADDRS, 0x01, 0x00]), 'v2'],
  ];

  for (const [name, input, accept] of malformed) {
    it(`${name} (${accept})`, () => {
      const whole = parse(input, accept);
      expect(whole.kind, JSON.stringify(whole)).toBe('error');
      expect(parseBytewise(input, accept).kind).toBe('error');
    });
  }

  it('refuses garbage at its first wrong byte', () => {
    const parser = new ProxyHeaderParser('any');
    expect(parser.push(Buffer.from('G'))).toMatchObject({ kind: 'error', reason: 'not a PROXY header' });
    expect(new ProxyHeaderParser('v1').push(Buffer.from('PRX'))).toMatchObject({ kind: 'error' });
    expect(new ProxyHeaderParser('v2').push(Buffer.from('\r\n\r\n\0\r\nX'))).toMatchObject({ kind: 'error' });
  });

  const validInputs: [string, Buffer][] = [
    ['v1 TCP4', V1_TCP4],
    ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN\r\n')],
    ['v2 TCP4', V2_TCP4],
    ['v2 TCP6 with TLVs', V2_TCP6_TLV],
    ['v2 LOCAL', v2(0x20, 0x00, [])],
  ];
  for (const [name, input] of validInputs) {
    it(`every truncation of ${name} needs more, and is an error at end of stream`, () => {
      for (let n = 0; n < input.length; n++) {
        const parser = new ProxyHeaderParser('any');
        const truncated = input.subarray(0, n);
        for (let k = 0; k < n; k++) expect(parser.push(truncated.subarray(k, k + 1))).toBe(NEED_MORE);
        expect(parser.end().kind).toBe('error');
      }
    });
  }
});

describe('ProxyHeaderParser: fuzz', () => {
  const CASES = 100_000;
  const accepts: ProxyAccept[] = ['v1', 'v2', 'any'];

  it(`${CASES.toLocaleString('en-US')} mutated and random inputs: never throws, never hangs, chunking never changes the answer`, () => {
    const tally = { done: 0, error: 0, more: 0 };
    const report = runFuzz({
      seed: fuzzSeed(0x7e7e),
      cases: CASES,
      timeLimitMs: 50_000,
      corpus: PROXY_CORPUS,
      dictionary: PROXY_DICTIONARY,
      prefixes: PROXY_PREFIXES,
      check({ input, random }) {
        const accept = accepts[Math.floor(random() * accepts.length)]!;
        const sizes = Array.from({ length: 64 }, () => 1 + Math.floor(random() * 20));
        const fed = { at: 0 };
        const whole = parse(input, accept);
        const answers = feed(new ProxyHeaderParser(accept), input, sizes, fed);
        const chunked = answers[answers.length - 1] ?? NEED_MORE;
        const context = `accept ${accept}`;
        expect(chunked.kind, context).toBe(whole.kind);
        tally[whole.kind]++;
        if (whole.kind === 'more') {
          // Never waiting past the limits: more is asked for only below them.
          expect(input.length, context).toBeLessThan(input[0] === 0x50 ? V1_MAX_BYTES : V2_MAX_BYTES);
          const parser = new ProxyHeaderParser(accept);
          feed(parser, input, sizes);
          expect(parser.end().kind, context).toBe('error');
        } else if (whole.kind === 'done' && chunked.kind === 'done') {
          expect(chunked.header, context).toEqual(whole.header);
          // The chunked rest is the tail of the chunk that ended the header; the rest
          // of the input was never pushed.
          expect(Buffer.concat([chunked.rest, input.subarray(fed.at)]).equals(whole.rest), context).toBe(true);
          const consumed = input.length - whole.rest.length;
          expect(consumed, context).toBeLessThanOrEqual(whole.header.version === 1 ? V1_MAX_BYTES : V2_MAX_BYTES);
          expect(input.subarray(consumed).equals(whole.rest)).toBe(true);
          const h = whole.header;
          if (h.command === 'proxy') {
            expect(net.isIP(h.sourceAddress), context).not.toBe(0);
            expect(net.isIP(h.destAddress), context).not.toBe(0);
            for (const port of [h.sourcePort, h.destPort]) expect(port >= 0 && port <= 65535, context).toBe(true);
            if (h.version === 1) {
              // proxy-protocol-js (lax) reads the same header out of it.
              const theirs = V1ProxyProtocol.parse(input.toString('latin1'));
              expect(theirs.source.port, context).toBe(h.sourcePort);
              expect(theirs.destination.port, context).toBe(h.destPort);
            }
          }
        } else if (whole.kind === 'error') {
          expect(typeof whole.reason).toBe('string');
        }
      },
    });
    expect(report.cases).toBe(process.env.FUZZ_CASE ? 1 : CASES);
    if (process.env.FUZZ_CASE) return;
    // The mutations reach every outcome often enough to mean something.
    expect(tally.done).toBeGreaterThan(CASES / 20);
    expect(tally.error).toBeGreaterThan(CASES / 4);
    expect(tally.more).toBeGreaterThan(CASES / 40);
    console.log(`PROXY parser fuzz: seed 0x${report.seed.toString(16)}, ${report.cases} cases in ${report.elapsedMs} ms: ${tally.done} headers, ${tally.error} malformed, ${tally.more} incomplete`);
  });

  it('generates the same cases from the same seed, and another set from another', () => {
    const options = { seed: 1, corpus: PROXY_CORPUS, dictionary: PROXY_DICTIONARY, prefixes: PROXY_PREFIXES };
    const a = Array.from({ length: 200 }, (_, i) => fuzzCase(options, i).input.toString('hex'));
    const b = Array.from({ length: 200 }, (_, i) => fuzzCase(options, i).input.toString('hex'));
    const c = Array.from({ length: 200 }, (_, i) => fuzzCase({ ...options, seed: 2 }, i).input.toString('hex'));
    expect(b).toEqual(a);
    expect(c.filter((x, i) => x === a[i]).length).toBeLessThan(20);
    // Case 150 alone is case 150 of the run.
    expect(fuzzCase(options, 150).input.toString('hex')).toBe(a[150]);
  });
});
