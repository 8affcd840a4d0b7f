import { describe, expect, it } from 'vitest';
import { forwardHeaders, isChunked, serializeResponseHead } from '../../../../src/proxy/http/headers.js';

describe('forwardHeaders', () => {
  it('drops hop-by-hop fields and those Connection names, keeps the rest in order', () => {
    const raw = ['Host', 'x', 'Connection', 'keep-alive, X-Secret-Hop', 'Keep-Alive', 'timeout=5', 'X-Secret-Hop', '1', 'Cookie', 'a=1', 'Transfer-Encoding', 'chunked', 'TE', 'trailers', 'Upgrade', 'h2c', 'Proxy-Connection', 'x', 'Expect', '100-continue', 'X-Keep', '2'];
    expect(forwardHeaders(raw, false)).toEqual(['Host', 'x', 'Cookie', 'a=1', 'X-Keep', '2']);
    expect(forwardHeaders(raw, true)).toEqual(['Host', 'x', 'Cookie', 'a=1', 'X-Keep', '2', 'Transfer-Encoding', 'chunked']);
  });

  it('keeps Upgrade for an upgrade request and says Connection: Upgrade once, other named fields still dropped', () => {
    const raw = ['Host', 'x', 'Connection', 'Upgrade, HTTP2-Settings', 'HTTP2-Settings', 'abc', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'];
    expect(forwardHeaders(raw, false, true)).toEqual(['Host', 'x', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k', 'Connection', 'Upgrade']);
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

describe('serializeResponseHead', () => {
  it('writes the head back byte for byte (latin1)', () => {
    const head = serializeResponseHead(101, 'Switching Protocols', ['Upgrade', 'websocket', 'Connection', 'Upgrade', 'X-Latin', 'caf\u00e9']);
    expect(head.toString('latin1')).toBe('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Latin: caf\u00e9\r\n\r\n');
    expect(head.length).toBe(head.toString('latin1').length);
  });
});
