import { describe, expect, it } from 'vitest';
import { DEFAULT_INSPECT_BYTES, compilePrefix, readRdpCookie } from '../../../../src/proxy/tcp/inspect/index.js';
import { fuzzSeed, runFuzz } from '../../../helpers/fuzz.js';
import { answer, checkChunking, everyEnd, someEnds } from '../../../helpers/inspect.js';

/** An X.224 Connection Request as mstsc sends it: TPKT, CR TPDU, cookie line, optional negotiation parts. */
function connectionRequest(cookie: string | null, negotiation: 'none' | 'neg' | 'neg+correlation'): Buffer {
  const parts: Buffer[] = [];
  if (cookie !== null) parts.push(Buffer.from(`Cookie: mstshash=${cookie}\r\n`, 'latin1'));
  if (negotiation !== 'none') parts.push(Buffer.from([0x01, negotiation === 'neg' ? 0x00 : 0x08, 0x08, 0x00, 0x0b, 0x00, 0x00, 0x00]));
  if (negotiation === 'neg+correlation') parts.push(Buffer.concat([Buffer.from([0x06, 0x00, 0x24, 0x00]), Buffer.alloc(16, 0xab), Buffer.alloc(16)]));
  const variable = Buffer.concat(parts);
  const length = 4 + 7 + variable.length;
  return Buffer.concat([Buffer.from([0x03, 0x00, length >> 8, length & 0xff, length - 5, 0xe0, 0, 0, 0, 0, 0]), variable]);
}

/** A plain reading of the same grammar over the whole input. */
function referenceCookie(input: Buffer): string | null {
  const text = input.toString('latin1');
  if (input.length < 11 || input[0] !== 3 || input[1] !== 0) return null;
  const length = input.readUInt16BE(2);
  if (length < 11 || length > 259 || length > input.length || input[4] !== length - 5 || input[5] !== 0xe0) return null;
  const m = /^Cookie: mstshash=([\x20-\x7e]+)\r\n/.exec(text.slice(11, length));
  if (m === null) return null;
  const tail = input.subarray(11 + m[0].length, length);
  const negOk = (b: Buffer): boolean => b.length === 8 && b[0] === 1 && b.readUInt16LE(2) === 8;
  const ok = tail.length === 0 || negOk(tail) || (tail.length === 44 && negOk(tail.subarray(0, 8)) && tail[8] === 6 && tail.readUInt16LE(10) === 36);
  return ok ? m[1]! : null;
}

const NAMES = ['alice', 'CONTOSO\\bob', 'a', 'user with space', 'x'.repeat(200)];

describe('readRdpCookie', () => {
  it('reads the mstshash cookie with and without negotiation parts, split at every byte', () => {
    for (const name of NAMES) {
      for (const negotiation of ['none', 'neg', 'neg+correlation'] as const) {
        const bytes = connectionRequest(name, negotiation);
        if (bytes.length > 259) continue;
        const result = checkChunking(readRdpCookie, bytes, everyEnd(bytes), DEFAULT_INSPECT_BYTES);
        expect(answer(result), `${name} ${negotiation}`).toBe(answer({ kind: 'key', key: name }));
        expect(answer(readRdpCookie(Buffer.concat([bytes, Buffer.from('after')]), bytes.length + 5))).toBe(answer(result));
      }
    }
  });

  it('says none without a cookie, for a routing token, for other protocols and for lies', () => {
    expect(readRdpCookie(connectionRequest(null, 'neg'), 19).kind).toBe('none');
    const token = Buffer.from(connectionRequest('xxxx', 'none').toString('latin1').replace('mstshash=xxxx', 'msts=12345678'), 'latin1');
    expect(readRdpCookie(token, token.length).kind).toBe('none');
    expect(readRdpCookie(Buffer.from([0x16, 0x03, 0x01]), 1).kind).toBe('none');
    const lying = connectionRequest('alice', 'neg');
    lying[4] = lying[4]! + 1; // LI past the TPKT
    expect(readRdpCookie(lying, lying.length).kind).toBe('none');
    const unterminated = connectionRequest('alice', 'none').subarray(0, -2);
    unterminated.writeUInt16BE(unterminated.length, 2);
    unterminated[4] = unterminated.length - 5;
    expect(readRdpCookie(unterminated, unterminated.length).kind).toBe('none');
    expect(readRdpCookie(connectionRequest('', 'neg'), 40).kind).toBe('none');
    expect(readRdpCookie(Buffer.from([0x03, 0x00, 0x00]), 3).kind).toBe('more');
  });

  it('100,000 mutated requests: no throw, keys only where a plain reading agrees, stable under chunking, no read past end', () => {
    const corpus = NAMES.flatMap((name) => (['none', 'neg', 'neg+correlation'] as const).map((n) => ({ name: `${name.slice(0, 12)} ${n}`, bytes: connectionRequest(name, n) })));
    const counts = { key: 0, none: 0, more: 0 };
    const report = runFuzz({
      seed: fuzzSeed(0x4d9),
      cases: 100_000,
      timeLimitMs: 30_000,
      corpus,
      dictionary: [Buffer.from('Cookie: mstshash='), Buffer.from('\r\n'), Buffer.from([0x03, 0x00]), Buffer.from([0xe0]), Buffer.from([0x01, 0x00, 0x08, 0x00])],
      prefixes: [Buffer.from([0x03, 0x00, 0x00, 0x2a, 0x25, 0xe0])],
      check: (c) => {
        const whole = checkChunking(readRdpCookie, c.input, someEnds(c.input.length, 6, c.random), DEFAULT_INSPECT_BYTES, Math.floor(c.random() * 256));
        const expected = referenceCookie(c.input);
        if ((whole.kind === 'key' ? whole.key : null) !== expected) throw new Error(`ours ${answer(whole)}, the plain reading ${JSON.stringify(expected)}`);
        counts[whole.kind]++;
      },
    });
    console.log(`rdp fuzz: seed 0x${report.seed.toString(16)}, ${report.cases} cases in ${report.elapsedMs} ms; answers ${JSON.stringify(counts)}`);
    expect(counts.key).toBeGreaterThan(1000);
  }, 60_000);
});

describe('compilePrefix', () => {
  const user = compilePrefix('^GET /u/([^/ ]+)/');

  it('gives the first capture, more until it matches, none at the limit or for an empty capture', () => {
    const bytes = Buffer.from('GET /u/alice/inbox HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer(checkChunking(user, bytes, everyEnd(bytes), DEFAULT_INSPECT_BYTES))).toBe(answer({ kind: 'key', key: 'alice' }));
    expect(user(Buffer.from('POST /'), 6).kind).toBe('more'); // the caller's timeout ends the wait
    expect(user(Buffer.from('POST /x'), 7, 7).kind).toBe('none');
    expect(user(bytes, bytes.length, 10).kind).toBe('none'); // the match lies past the limit: not seen, even if the caller passes more
    expect(compilePrefix('^id=(\\d*);')(Buffer.from('id=;'), 4).kind).toBe('none');
    expect(answer(compilePrefix('\\xff(\\x00\\x01)')(Buffer.from([0x41, 0xff, 0x00, 0x01]), 4))).toBe(answer({ kind: 'key', key: '\x00\x01' }));
    expect(answer(compilePrefix('^user=(\\w+);', { flags: 'i' })(Buffer.from('USER=Bob;'), 9))).toBe(answer({ kind: 'key', key: 'Bob' }));
  });

  it('refuses a bad pattern, a pattern without a group and stateful flags at configuration time', () => {
    expect(() => compilePrefix('(')).toThrow();
    expect(() => compilePrefix('abc')).toThrow(/capture group/);
    expect(() => compilePrefix('(a)', { flags: 'g' })).toThrow(/flags/);
  });

  it('100,000 random inputs: no throw, the key is the capture over the first bytes only, stable under chunking for a delimited pattern', () => {
    const corpus = ['GET /u/alice/ HTTP/1.1\r\n', 'GET /u/b%20c/x', 'GET /u//', 'PUT /u/alice/'].map((s, i) => ({ name: `req${i}`, bytes: Buffer.from(s, 'latin1') }));
    const reference = /^GET \/u\/([^/ ]+)\//;
    const counts = { key: 0, none: 0, more: 0 };
    const report = runFuzz({
      seed: fuzzSeed(0x9e3),
      cases: 100_000,
      timeLimitMs: 30_000,
      corpus,
      dictionary: [Buffer.from('GET /u/'), Buffer.from('/'), Buffer.from(' ')],
      check: (c) => {
        const limit = 8 + Math.floor(c.random() * 40);
        const whole = checkChunking(user, c.input, someEnds(c.input.length, 6, c.random), limit, Math.floor(c.random() * 256));
        const m = reference.exec(c.input.toString('latin1', 0, Math.min(limit, c.input.length)));
        const expected = m === null ? (c.input.length < limit ? 'more' : 'none') : answer({ kind: 'key', key: m[1]! });
        if ((whole.kind === 'none' ? 'none' : answer(whole)) !== expected) throw new Error(`ours ${answer(whole)}, expected ${expected}`);
        counts[whole.kind]++;
      },
    });
    console.log(`prefix fuzz: seed 0x${report.seed.toString(16)}, ${report.cases} cases in ${report.elapsedMs} ms; answers ${JSON.stringify(counts)}`);
    expect(counts.key).toBeGreaterThan(1000);
  }, 60_000);
});
