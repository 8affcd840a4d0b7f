import { describe, expect, it } from 'vitest';
import { Body, FAILED, H1Error, h1ErrorName, NEED_MORE, ResponseHead } from '../../../../src/proxy/http/h1/index.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

function parse(text: string, requestMethod = 'GET'): ResponseHead {
  const head = new ResponseHead(8192);
  head.reset(requestMethod);
  head.push(bytes(text));
  return head;
}

describe('ResponseHead: known-good heads and RFC 9112 6.3 framing', () => {
  it('reads status, reason, version and fields', () => {
    const head = parse('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n');
    expect([head.status, head.reason, head.versionMinor, head.bodyKind, head.contentLength]).toEqual([404, 'Not Found', 1, Body.Length, 9]);
    expect(head.rawHeaders()).toEqual(['Content-Type', 'text/plain', 'Content-Length', '9']);
    expect(parse('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').reason).toBe('');
    expect(parse('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n').reason).toBe('');
  });

  const FRAMING: readonly [name: string, head: string, method: string, body: number, keepAlive: boolean][] = [
    ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 'GET', Body.Length, true],
    ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'GET', Body.Chunked, true],
    ['close-delimited', 'HTTP/1.1 200 OK\r\n\r\n', 'GET', Body.UntilClose, false],
    ['HTTP/1.0 without length', 'HTTP/1.0 200 OK\r\n\r\n', 'GET', Body.UntilClose, false],
    ['HTTP/1.0 keep-alive with length', 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n', 'GET', Body.Length, true],
    ['HEAD: no body whatever the length', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 'HEAD', Body.None, true],
    ['204: no body', 'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n', 'GET', Body.None, true],
    ['304: no body', 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n', 'GET', Body.None, true],
    ['100: interim, no body', 'HTTP/1.1 100 Continue\r\n\r\n', 'GET', Body.None, true],
    ['101: switching protocols', 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 'GET', Body.Tunnel, true],
    ['2xx to CONNECT: tunnel', 'HTTP/1.1 200 Connection Established\r\n\r\n', 'CONNECT', Body.Tunnel, true],
    ['4xx to CONNECT: a normal body', 'HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\n', 'CONNECT', Body.Length, true],
    ['Connection: close', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n', 'GET', Body.Length, false],
  ];
  for (const [name, text, method, body, keepAlive] of FRAMING) {
    it(`frames ${name}`, () => {
      const head = parse(text, method);
      expect(head.complete).toBe(true);
      expect([head.bodyKind, head.keepAlive]).toEqual([body, keepAlive]);
    });
  }

  it('marks a 1xx other than 101 as interim', () => {
    expect(parse('HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n').interim).toBe(true);
    expect(parse('HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n').interim).toBe(false);
  });
});

const REFUSED: readonly [name: string, head: string, error: number][] = [
  ['HTTP/2.0', 'HTTP/2.0 200 OK\r\n\r\n', H1Error.BadVersion],
  ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', H1Error.BadStatus],
  ['four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n', H1Error.BadStatus],
  ['status below 100', 'HTTP/1.1 099 OK\r\n\r\n', H1Error.BadStatus],
  ['two SPs before the status', 'HTTP/1.1  200 OK\r\n\r\n', H1Error.BadStatus],
  ['control character in the reason', 'HTTP/1.1 200 O\x01K\r\n\r\n', H1Error.BadReason],
  ['bare LF ending the status line', 'HTTP/1.1 200 OK\n\r\n', H1Error.BareLF],
  ['CR without LF ending the status line', 'HTTP/1.1 200 OK\r\r\n', H1Error.BareCR],
  ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', H1Error.ContentLengthWithTransferEncoding],
  ['Transfer-Encoding not ending in chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', H1Error.BadTransferEncoding],
  ['Transfer-Encoding on HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', H1Error.TransferEncodingOnHttp10],
  ['Content-Length twice', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n', H1Error.DuplicateContentLength],
  ['1xx with Content-Length', 'HTTP/1.1 150 X\r\nContent-Length: 3\r\n\r\n', H1Error.FramingOnInterim],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', H1Error.ObsFold],
];

describe('ResponseHead: strictness', () => {
  for (const [name, text, error] of REFUSED) {
    it(`refuses ${name} (${h1ErrorName(error as never)})`, () => {
      const head = new ResponseHead(8192);
      expect(head.push(bytes(text))).toBe(FAILED);
      expect(h1ErrorName(head.error)).toBe(h1ErrorName(error as never));
    });
  }
});

describe('ResponseHead: reads', () => {
  it('gives the same head split at every byte boundary', () => {
    const input = bytes('HTTP/1.1 200 Fine Thanks\r\nContent-Length: 3\r\nX-A:  b \r\n\r\n');
    for (let cut = 0; cut <= input.length; cut++) {
      const head = new ResponseHead(8192);
      const first = head.execute(input, 0, cut);
      const end = first === NEED_MORE ? head.execute(input, cut, input.length) : first;
      expect(end, `cut at ${cut}`).toBe(input.length);
      expect([head.status, head.reason, head.rawHeaders(), head.contentLength]).toEqual([200, 'Fine Thanks', ['Content-Length', '3', 'X-A', 'b'], 3]);
    }
  });

  it('reads an interim response then the final one from one buffer', () => {
    const input = bytes('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    const head = new ResponseHead(8192);
    const end = head.push(input);
    expect(head.interim).toBe(true);
    head.reset();
    expect(head.execute(input, end, input.length)).toBe(input.length);
    expect(head.status).toBe(200);
  });

  it('refuses a head one byte over maxHeadBytes with 431', () => {
    const text = 'HTTP/1.1 200 OK\r\nX: aaaaaaaaaa\r\n\r\n';
    expect(new ResponseHead(text.length).push(bytes(text))).toBe(text.length);
    const over = new ResponseHead(text.length - 1);
    expect(over.push(bytes(text))).toBe(FAILED);
    expect(over.error).toBe(H1Error.HeadTooLarge);
  });
});
