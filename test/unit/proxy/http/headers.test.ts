import { describe, expect, it } from 'vitest';
import { forwardHeaders, isChunked, serializeRequestHead } from '../../../../src/proxy/http/headers.js';

describe('forwardHeaders', () => {
  it('drops hop-by-hop fields and those Connection names, keeps the rest in order', () => {
    const raw = ['Host', 'x', 'Connection', 'keep-alive, X-Secret-Hop', 'Keep-Alive', 'timeout=5', 'X-Secret-Hop', '1', 'Cookie', 'a=1', 'Transfer-Encoding', 'chunked', 'TE', 'trailers', 'Upgrade', 'h2c', 'Proxy-Connection', 'x', 'Expect', '100-continue', 'X-Keep', '2'];
    expect(forwardHeaders(raw, false)).toEqual(['Host', 'x', 'Cookie', 'a=1', 'X-Keep', '2']);
    expect(forwardHeaders(raw, true)).toEqual(['Host', 'x', 'Cookie', 'a=1', 'X-Keep', '2', 'Transfer-Encoding', 'chunked']);
  });
});

describe('isChunked', () => {
  it('is true only when chunked is the final coding', () => {
    expect(isChunked('chunked')).toBe(true);
    expect(isChunked('gzip, chunked')).toBe(true);
    expect(isChunked('Chunked')).toBe(true);
    expect(isChunked('chunked, gzip')).toBe(false);
    expect(isChunked(undefined)).toBe(false);
  });
});

describe('serializeRequestHead', () => {
  it('writes the head back byte for byte (latin1)', () => {
    const head = serializeRequestHead('GET', '/ws?sid=1', '1.1', ['Host', 'h', 'Upgrade', 'websocket', 'X-Latin', 'caf\u00e9']);
    expect(head.toString('latin1')).toBe('GET /ws?sid=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nX-Latin: caf\u00e9\r\n\r\n');
    expect(head.length).toBe(head.toString('latin1').length);
  });
});
