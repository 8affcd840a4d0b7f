import { describe, expect, it } from 'vitest';
import { ChunkedFramer, FAILED, H1Error, h1ErrorName, LengthFramer, NEED_MORE } from '../../../../src/proxy/http/h1/index.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('ChunkedFramer', () => {
  const BODY = '5;name=value;flag;q="a \\" b"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\nX-Other:\r\n\r\n';

  it('finds the end of a body with extensions and trailers, and counts its data', () => {
    const input = bytes(`${BODY}GET /next HTTP/1.1\r\n`);
    const framer = new ChunkedFramer();
    expect(framer.execute(input, 0, input.length)).toBe(BODY.length);
    expect(framer.complete).toBe(true);
    expect(framer.dataBytes).toBe(5 + 26);
  });

  it('finds the same end split at every byte boundary, and one byte per read', () => {
    const input = bytes(BODY);
    for (let cut = 0; cut <= input.length; cut++) {
      const framer = new ChunkedFramer();
      const first = framer.execute(input, 0, cut);
      const end = first === NEED_MORE ? framer.execute(input, cut, input.length) : first;
      expect(end, `cut at ${cut}`).toBe(input.length);
      expect(framer.dataBytes).toBe(31);
    }
    const framer = new ChunkedFramer();
    let end = NEED_MORE;
    for (let i = 0; i < input.length && end === NEED_MORE; i++) end = framer.execute(input, i, i + 1);
    expect(end).toBe(input.length);
  });

  it('takes leading zeros and uppercase hex', () => {
    const input = bytes('000A\r\n0123456789\r\n00\r\n\r\n');
    expect(new ChunkedFramer().execute(input)).toBe(input.length);
  });

  const REFUSED: readonly [name: string, body: string, error: number][] = [
    ['a size over 2^53 - 1', '20000000000000\r\n', H1Error.ChunkSizeTooLarge],
    ['a size of 17 hex digits (64-bit overflow)', 'fffffffffffffffff\r\n', H1Error.ChunkSizeTooLarge],
    ['a 0x prefix', '0x5\r\nhello\r\n0\r\n\r\n', H1Error.BadChunkSize],
    ['a sign', '-5\r\nhello\r\n0\r\n\r\n', H1Error.BadChunkSize],
    ['SP after the size', '5 \r\nhello\r\n0\r\n\r\n', H1Error.BadChunkSize],
    ['an empty size line', '\r\n', H1Error.BadChunkSize],
    ['junk after the size', '5z\r\nhello\r\n0\r\n\r\n', H1Error.BadChunkSize],
    ['bare LF after the size', '5\nhello\r\n0\r\n\r\n', H1Error.BareLF],
    ['bare CR after the size', '5\rhello\r\n0\r\n\r\n', H1Error.BareCR],
    ['whitespace around an extension', '5 ; a=b\r\nhello\r\n0\r\n\r\n', H1Error.BadChunkSize],
    ['an extension without a name', '5;=b\r\nhello\r\n0\r\n\r\n', H1Error.BadChunkExtension],
    ['an extension with an empty value', '5;a=\r\nhello\r\n0\r\n\r\n', H1Error.BadChunkExtension],
    ['an unterminated quoted extension', '5;a="b\r\nhello\r\n0\r\n\r\n', H1Error.BadChunkExtension],
    ['a quote after a token value', '5;a=b"c"\r\nhello\r\n0\r\n\r\n', H1Error.BadChunkExtension],
    ['a size line over the limit', `5;a=${'b'.repeat(5000)}\r\n`, H1Error.BadChunkExtension],
    ['data longer than its size', '5\r\nhello!\r\n0\r\n\r\n', H1Error.BadChunkDataEnd],
    ['data followed by a byte other than CR', '5\r\nhelloX\n0\r\n\r\n', H1Error.BadChunkDataEnd],
    ['data followed by bare LF', '5\r\nhello\n0\r\n\r\n', H1Error.BadChunkDataEnd],
    ['a trailer without a colon', '0\r\nX-T\r\n\r\n', H1Error.BadTrailer],
    ['a folded trailer', '0\r\nX-T: a\r\n b\r\n\r\n', H1Error.ObsFold],
    ['whitespace before a trailer colon', '0\r\nX-T : a\r\n\r\n', H1Error.WhitespaceBeforeColon],
    ['NUL in a trailer value', '0\r\nX-T: a\0\r\n\r\n', H1Error.BadTrailer],
    ['Content-Length as a trailer', '0\r\ncontent-length: 5\r\n\r\n', H1Error.BadTrailer],
    ['Transfer-Encoding as a trailer', '0\r\nTransfer-Encoding: chunked\r\n\r\n', H1Error.BadTrailer],
    ['bare LF ending the trailer section', '0\r\n\n', H1Error.BareLF],
  ];
  for (const [name, body, error] of REFUSED) {
    it(`refuses ${name} (${h1ErrorName(error as never)})`, () => {
      const framer = new ChunkedFramer();
      expect(framer.execute(bytes(body))).toBe(FAILED);
      expect(h1ErrorName(framer.error)).toBe(h1ErrorName(error as never));
    });
  }

  it('bounds the trailer section (431)', () => {
    const framer = new ChunkedFramer({ maxTrailerBytes: 64 });
    expect(framer.execute(bytes(`0\r\nX: ${'a'.repeat(80)}\r\n\r\n`))).toBe(FAILED);
    expect(framer.error).toBe(H1Error.HeadTooLarge);
    // A name like a framing field's but longer is an ordinary trailer.
    expect(new ChunkedFramer().execute(bytes('0\r\nContent-Lengths: 1\r\n\r\n'))).toBe(25);
  });
});

describe('LengthFramer', () => {
  it('counts a body down across reads and says where it ends', () => {
    const framer = new LengthFramer();
    framer.reset(10);
    const input = bytes('0123456789NEXT');
    expect(framer.execute(input, 0, 4)).toBe(NEED_MORE);
    expect(framer.remaining).toBe(6);
    expect(framer.execute(input, 4, input.length)).toBe(10);
    expect(framer.complete).toBe(true);
  });
});
