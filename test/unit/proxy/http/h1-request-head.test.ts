import { describe, expect, it } from 'vitest';
import { Body, Connection, FAILED, H1Error, h1ErrorName, h1ErrorStatus, NEED_MORE, RequestHead } from '../../../../src/proxy/http/h1/index.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

function parse(text: string, maxHeadBytes = 8192): RequestHead {
  const head = new RequestHead(maxHeadBytes);
  head.push(bytes(text));
  return head;
}

const BROWSER_GET =
  'GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html,*/*;q=0.8\r\n' +
  'Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: sid=abc; theme=dark\r\n' +
  'Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nCache-Control: max-age=0\r\n\r\n';

describe('RequestHead: known-good heads', () => {
  it('reads a browser GET: start line, fields, framing', () => {
    const input = bytes(BROWSER_GET);
    const head = new RequestHead(8192);
    expect(head.push(input)).toBe(input.length);
    expect(head.complete).toBe(true);
    expect(head.method).toBe('GET');
    expect(head.target).toBe('/index.html?q=1');
    expect(head.versionMinor).toBe(1);
    expect(head.headerCount).toBe(10);
    expect(head.headerName(0)).toBe('Host');
    expect(head.header('host')).toBe('example.com');
    expect(head.header('COOKIE')).toBe('sid=abc; theme=dark');
    expect(head.header('x-missing')).toBeUndefined();
    expect(head.hasHost).toBe(true);
    expect(head.keepAlive).toBe(true);
    expect(head.bodyKind).toBe(Body.None);
    expect(head.contentLength).toBe(-1);
    expect(head.bytes.toString('latin1')).toBe(BROWSER_GET);
  });

  it('strips OWS around values and takes empty values', () => {
    const head = parse('GET / HTTP/1.1\r\nA: \t x y \t \r\nB:\r\nC:   \r\n\r\n');
    expect(head.rawHeaders()).toEqual(['A', 'x y', 'B', '', 'C', '']);
    const f = head.fieldOffsets;
    expect(head.bytes.toString('latin1', f[2], f[3])).toBe('x y');
  });

  it('reads framing: Content-Length, chunked, Connection options, Upgrade, Expect', () => {
    const post = parse('POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 0042\r\nExpect: 100-Continue\r\n\r\n');
    expect([post.bodyKind, post.contentLength, post.expectContinue]).toEqual([Body.Length, 42, true]);
    const chunked = parse('POST /u HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n');
    expect([chunked.bodyKind, chunked.chunked]).toEqual([Body.Chunked, true]);
    const ws = parse('GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade, x-hop\r\nUpgrade: websocket\r\n\r\n');
    expect(ws.upgrade).toBe(true);
    expect(ws.connectionOptions).toBe(Connection.KeepAlive | Connection.Upgrade | Connection.Other);
    expect(parse('GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n').upgrade).toBe(false);
    expect(parse('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n').isConnect).toBe(true);
    expect(parse('OPTIONS * HTTP/1.1\r\n\r\n').target).toBe('*');
    expect(parse('GET http://example.com:8080/a?b HTTP/1.1\r\n\r\n').target).toBe('http://example.com:8080/a?b');
  });

  it('keeps HTTP/1.0 open only with keep-alive, HTTP/1.1 unless close', () => {
    expect(parse('GET / HTTP/1.0\r\n\r\n').keepAlive).toBe(false);
    expect(parse('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive).toBe(true);
    expect(parse('GET / HTTP/1.1\r\n\r\n').keepAlive).toBe(true);
    expect(parse('GET / HTTP/1.1\r\nConnection: close\r\n\r\n').keepAlive).toBe(false);
    expect(parse('GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n').keepAlive).toBe(false);
  });

  it('skips CRLF empty lines before the request line, and does not count them as head bytes', () => {
    const head = parse('\r\n\r\nGET /x HTTP/1.1\r\n\r\n');
    expect(head.complete).toBe(true);
    expect(head.bytes.toString('latin1')).toBe('GET /x HTTP/1.1\r\n\r\n');
  });
});

/** One case per strictness rule: the head, and the refusal it must get. */
const REFUSED: readonly [name: string, head: string, error: number][] = [
  ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', H1Error.ContentLengthWithTransferEncoding],
  ['Content-Length twice, same value', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', H1Error.DuplicateContentLength],
  ['Content-Length twice, different values', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', H1Error.DuplicateContentLength],
  ['Content-Length as a list', 'POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n', H1Error.BadContentLength],
  ['Content-Length with a sign', 'POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n', H1Error.BadContentLength],
  ['Content-Length empty', 'POST / HTTP/1.1\r\nContent-Length: \r\n\r\n', H1Error.BadContentLength],
  ['Content-Length over 2^53 - 1', 'POST / HTTP/1.1\r\nContent-Length: 9007199254740992\r\n\r\n', H1Error.BadContentLength],
  ['Transfer-Encoding not ending in chunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding chunked , identity', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked , identity\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding xchunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding chunked twice', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding chunked then another line', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding with a trailing comma', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding empty, then chunked on a line of its own', 'POST / HTTP/1.1\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding of commas only, then chunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: , ,\r\nTransfer-Encoding: chunked\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding with parameters', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding on HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', H1Error.TransferEncodingOnHttp10],
  ['whitespace before the colon', 'GET / HTTP/1.1\r\nHost : h\r\n\r\n', H1Error.WhitespaceBeforeColon],
  ['obs-fold continuation line', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n', H1Error.ObsFold],
  ['obs-fold with HTAB', 'GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n', H1Error.ObsFold],
  ['bare LF ending a field line', 'GET / HTTP/1.1\r\nX: a\n\r\n', H1Error.BareLF],
  ['bare LF ending the request line', 'GET / HTTP/1.1\n\r\n', H1Error.BareLF],
  ['bare LF ending the head', 'GET / HTTP/1.1\r\nX: a\r\n\n', H1Error.BareLF],
  ['bare CR inside a value', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n', H1Error.BareCR],
  ['bare CR ending the head', 'GET / HTTP/1.1\r\n\rX', H1Error.BareCR],
  ['NUL in a value', 'GET / HTTP/1.1\r\nX: a\0b\r\n\r\n', H1Error.BadHeaderValue],
  ['DEL in a value', 'GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n', H1Error.BadHeaderValue],
  ['control character in a value', 'GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n', H1Error.BadHeaderValue],
  ['invalid token character in a name', 'GET / HTTP/1.1\r\nX(y): a\r\n\r\n', H1Error.BadHeaderName],
  ['empty field name', 'GET / HTTP/1.1\r\n: a\r\n\r\n', H1Error.BadHeaderName],
  ['field line without a colon', 'GET / HTTP/1.1\r\nNoColon\r\n\r\n', H1Error.BadHeaderName],
  ['invalid token character in the method', 'G(T / HTTP/1.1\r\n\r\n', H1Error.BadMethod],
  ['unknown method', 'FETCH / HTTP/1.1\r\n\r\n', H1Error.BadMethod],
  ['lowercase method', 'get / HTTP/1.1\r\n\r\n', H1Error.BadMethod],
  ['SP in the target', 'GET /a b HTTP/1.1\r\n\r\n', H1Error.BadVersion],
  ['control character in the target', 'GET /a\x01 HTTP/1.1\r\n\r\n', H1Error.BadTarget],
  ['obs-text in the target', 'GET /a\xff HTTP/1.1\r\n\r\n', H1Error.BadTarget],
  ['target not starting with / or a scheme', 'GET a/b HTTP/1.1\r\n\r\n', H1Error.BadTarget],
  ['asterisk-form on GET', 'GET * HTTP/1.1\r\n\r\n', H1Error.BadTarget],
  ['CONNECT without a port', 'CONNECT example.com HTTP/1.1\r\n\r\n', H1Error.BadTarget],
  ['absolute-form with userinfo', 'GET http://u@h/ HTTP/1.1\r\n\r\n', H1Error.BadTarget],
  ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n', H1Error.BadVersion],
  ['HTTP/1.2', 'GET / HTTP/1.2\r\n\r\n', H1Error.BadVersion],
  ['HTTP/0.9 request line (no version)', 'GET /\r\n\r\n', H1Error.BadVersion],
  ['lowercase version', 'GET / http/1.1\r\n\r\n', H1Error.BadVersion],
  ['two SPs after the method', 'GET  / HTTP/1.1\r\n\r\n', H1Error.BadStartLine],
  ['two SPs before the version', 'GET /  HTTP/1.1\r\n\r\n', H1Error.BadStartLine],
  ['SP after the version', 'GET / HTTP/1.1 \r\n\r\n', H1Error.BadVersion],
  ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', H1Error.DuplicateHost],
  ['Connection not a token list', 'GET / HTTP/1.1\r\nConnection: close x\r\n\r\n', H1Error.BadConnection],
  ['bare LF before the request line', '\nGET / HTTP/1.1\r\n\r\n', H1Error.BareLF],
];

describe('RequestHead: strictness', () => {
  for (const [name, text, error] of REFUSED) {
    it(`refuses ${name} (${h1ErrorName(error as never)})`, () => {
      const head = new RequestHead(8192);
      expect(head.push(bytes(text))).toBe(FAILED);
      expect(h1ErrorName(head.error)).toBe(h1ErrorName(error as never));
      expect(h1ErrorStatus(head.error)).toBe(400);
      // A failure sticks until reset.
      expect(head.push(bytes('GET / HTTP/1.1\r\n\r\n'))).toBe(FAILED);
    });
  }
});

describe('RequestHead: reads', () => {
  const input = bytes('POST /split?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-V: \t v \r\n\r\n');

  it('gives the same head when split at every byte boundary, and one byte per read', () => {
    const whole = parse(input.toString('latin1'));
    for (let cut = 0; cut <= input.length; cut++) {
      const head = new RequestHead(8192);
      const first = head.execute(input, 0, cut);
      const end = first === NEED_MORE ? head.execute(input, cut, input.length) : first;
      expect(end, `cut at ${cut}`).toBe(input.length);
      expect([head.method, head.target, head.rawHeaders(), head.contentLength]).toEqual([whole.method, whole.target, whole.rawHeaders(), whole.contentLength]);
    }
    const head = new RequestHead(8192);
    let end = NEED_MORE;
    for (let i = 0; i < input.length && end === NEED_MORE; i++) end = head.execute(input, i, i + 1);
    expect(end).toBe(input.length);
    expect(head.rawHeaders()).toEqual(whole.rawHeaders());
  });

  it('reports where each of many pipelined requests ends', () => {
    const one = (k: number): string => `GET /p${k} HTTP/1.1\r\nHost: h\r\nX-K: ${k}\r\n\r\n`;
    const buffer = bytes(Array.from({ length: 50 }, (_, k) => one(k)).join(''));
    const head = new RequestHead(8192);
    let at = 0;
    for (let k = 0; k < 50; k++) {
      head.reset();
      const end = head.execute(buffer, at, buffer.length);
      expect(end - at).toBe(one(k).length);
      expect([head.target, head.header('x-k')]).toEqual([`/p${k}`, String(k)]);
      at = end;
    }
    expect(at).toBe(buffer.length);
  });

  it('takes a head of exactly maxHeadBytes and refuses one byte more with 431', () => {
    const sized = (n: number): string => {
      const base = 'GET / HTTP/1.1\r\nX: \r\n\r\n';
      return base.replace('X: ', `X: ${'a'.repeat(n - base.length)}`);
    };
    expect(bytes(sized(200)).length).toBe(200);
    const atLimit = new RequestHead(200);
    expect(atLimit.push(bytes(sized(200)))).toBe(200);
    const over = new RequestHead(200);
    expect(over.push(bytes(sized(201)))).toBe(FAILED);
    expect(over.error).toBe(H1Error.HeadTooLarge);
    expect(h1ErrorStatus(over.error)).toBe(431);
    // The same over several reads.
    const split = new RequestHead(200);
    const input201 = bytes(sized(201));
    expect(split.execute(input201, 0, 150)).toBe(NEED_MORE);
    expect(split.execute(input201, 150, 201)).toBe(FAILED);
    expect(split.error).toBe(H1Error.HeadTooLarge);
  });

  it('grows its field table past the initial size', () => {
    const fields = Array.from({ length: 300 }, (_, k) => `X-${k}: v${k}\r\n`).join('');
    const head = parse(`GET / HTTP/1.1\r\n${fields}\r\n`, 65536);
    expect(head.headerCount).toBe(300);
    expect(head.header('x-299')).toBe('v299');
  });
});
