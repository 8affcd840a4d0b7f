import { BACKSLASH, CR, DQUOTE, EQUALS, FIELD_VALUE, HEX_VALUE, HTAB, LF, QDTEXT, SEMICOLON, SP, TCHAR, COLON } from './chars.js';
import { FAILED, H1Error, NEED_MORE, type H1ErrorCode } from './errors.js';

const SIZE_START = 0;
const SIZE = 1;
const EXT_NAME_START = 2;
const EXT_NAME = 3;
const EXT_VALUE_START = 4;
const EXT_TOKEN = 5;
const EXT_QUOTED = 6;
const EXT_QUOTED_PAIR = 7;
const EXT_AFTER_QUOTED = 8;
const SIZE_LF = 9;
const DATA = 10;
const DATA_CR = 11;
const DATA_LF = 12;
const TRAILER_LINE_START = 13;
const TRAILER_NAME = 14;
const TRAILER_VALUE = 15;
const TRAILER_LF = 16;
const END_LF = 17;
const DONE = 18;
const FAILED_STATE = 19;

const CONTENT_LENGTH = Uint8Array.from('content-length', (ch) => ch.charCodeAt(0));
const TRANSFER_ENCODING = Uint8Array.from('transfer-encoding', (ch) => ch.charCodeAt(0));
const MAY_BE_CONTENT_LENGTH = 1;
const MAY_BE_TRANSFER_ENCODING = 2;

/** Chunk sizes are capped where JavaScript numbers stop being exact. */
const MAX_CHUNK_SIZE = Number.MAX_SAFE_INTEGER;

export interface ChunkedLimits {
  /** Longest chunk-size line (extensions included), CRLF excluded. */
  readonly maxLineBytes?: number;
  /** Most bytes of trailer section, final CRLF included. */
  readonly maxTrailerBytes?: number;
}

/**
 * Finds where a chunked body (RFC 9112 7.1) ends and refuses a malformed one,
 * without copying: the relay forwards the bytes as received. Chunk-size lines are
 * hex (capped at 2^53 - 1) with extensions in the strict grammar (no whitespace,
 * token or quoted-string values), every line ends in CRLF, and trailer fields are
 * valid field lines within `maxTrailerBytes`, none of them Content-Length or
 * Transfer-Encoding.
 *
 * `execute(buf, start, end)` returns the offset just after the body once it ends,
 * NEED_MORE when it goes on past `end`, or FAILED with `error` set. `reset()` before
 * the next body.
 */
export class ChunkedFramer {
  error: H1ErrorCode = H1Error.None;
  /** Chunk data bytes seen so far (sizes, extensions, CRLFs and trailers excluded). */
  dataBytes = 0;
  readonly maxLineBytes: number;
  readonly maxTrailerBytes: number;

  #state = SIZE_START;
  /** Data left in the current chunk, or the size read so far. */
  #size = 0;
  #lineBytes = 0;
  #trailerBytes = 0;
  /** The trailer name read so far: its length, and which framing names it could still be. */
  #nameLength = 0;
  #nameCandidates = 0;

  constructor(limits: ChunkedLimits = {}) {
    this.maxLineBytes = limits.maxLineBytes ?? 4096;
    this.maxTrailerBytes = limits.maxTrailerBytes ?? 16384;
  }

  reset(): void {
    this.error = H1Error.None;
    this.dataBytes = 0;
    this.#state = SIZE_START;
    this.#size = 0;
    this.#lineBytes = 0;
    this.#trailerBytes = 0;
  }

  get complete(): boolean {
    return this.#state === DONE;
  }

  /** Bytes of chunk data still due in the chunk being read (0 between chunks). */
  get chunkRemaining(): number {
    return this.#state === DATA ? this.#size : 0;
  }

  execute(buf: Uint8Array, start = 0, end = buf.length): number {
    let state = this.#state;
    if (state === FAILED_STATE) return FAILED;
    if (state === DONE) throw new Error('ChunkedFramer: reset() before the next body');
    let i = start;
    for (; i < end; i++) {
      const c = buf[i]!;
      if (state <= EXT_AFTER_QUOTED && ++this.#lineBytes > this.maxLineBytes) return this.#fail(H1Error.BadChunkExtension);
      switch (state) {
        case SIZE_START: {
          const v = HEX_VALUE[c]!;
          if (v < 0) return this.#fail(H1Error.BadChunkSize);
          this.#size = v;
          state = SIZE;
          break;
        }
        case SIZE: {
          const v = HEX_VALUE[c]!;
          if (v >= 0) {
            this.#size = this.#size * 16 + v;
            if (this.#size > MAX_CHUNK_SIZE) return this.#fail(H1Error.ChunkSizeTooLarge);
          } else if (c === CR) {
            state = SIZE_LF;
          } else if (c === SEMICOLON) {
            state = EXT_NAME_START;
          } else {
            return this.#fail(c === LF ? H1Error.BareLF : H1Error.BadChunkSize);
          }
          break;
        }
        case EXT_NAME_START:
          if (TCHAR[c] !== 1) return this.#fail(H1Error.BadChunkExtension);
          state = EXT_NAME;
          break;
        case EXT_NAME:
          if (TCHAR[c] === 1) break;
          if (c === EQUALS) state = EXT_VALUE_START;
          else if (c === SEMICOLON) state = EXT_NAME_START;
          else if (c === CR) state = SIZE_LF;
          else return this.#fail(c === LF ? H1Error.BareLF : H1Error.BadChunkExtension);
          break;
        case EXT_VALUE_START:
          if (TCHAR[c] === 1) state = EXT_TOKEN;
          else if (c === DQUOTE) state = EXT_QUOTED;
          else return this.#fail(H1Error.BadChunkExtension);
          break;
        case EXT_TOKEN:
          if (TCHAR[c] === 1) break;
          if (c === SEMICOLON) state = EXT_NAME_START;
          else if (c === CR) state = SIZE_LF;
          else return this.#fail(c === LF ? H1Error.BareLF : H1Error.BadChunkExtension);
          break;
        case EXT_QUOTED:
          if (c === DQUOTE) state = EXT_AFTER_QUOTED;
          else if (c === BACKSLASH) state = EXT_QUOTED_PAIR;
          else if (QDTEXT[c] !== 1) return this.#fail(H1Error.BadChunkExtension);
          break;
        case EXT_QUOTED_PAIR:
          if (FIELD_VALUE[c] !== 1) return this.#fail(H1Error.BadChunkExtension);
          state = EXT_QUOTED;
          break;
        case EXT_AFTER_QUOTED:
          if (c === SEMICOLON) state = EXT_NAME_START;
          else if (c === CR) state = SIZE_LF;
          else return this.#fail(c === LF ? H1Error.BareLF : H1Error.BadChunkExtension);
          break;
        case SIZE_LF:
          if (c !== LF) return this.#fail(H1Error.BareCR);
          this.#lineBytes = 0;
          state = this.#size === 0 ? TRAILER_LINE_START : DATA;
          break;
        case DATA: {
          // Skip the data without looking at it.
          const n = Math.min(this.#size, end - i);
          this.#size -= n;
          this.dataBytes += n;
          i += n - 1;
          if (this.#size === 0) state = DATA_CR;
          break;
        }
        case DATA_CR:
          if (c !== CR) return this.#fail(H1Error.BadChunkDataEnd);
          state = DATA_LF;
          break;
        case DATA_LF:
          if (c !== LF) return this.#fail(H1Error.BadChunkDataEnd);
          state = SIZE_START;
          break;
        default:
          // The trailer section, bounded as a whole.
          if (++this.#trailerBytes > this.maxTrailerBytes) return this.#fail(H1Error.HeadTooLarge);
          switch (state) {
            case TRAILER_LINE_START:
              if (c === CR) state = END_LF;
              else if (TCHAR[c] === 1) {
                this.#nameLength = 0;
                this.#nameCandidates = MAY_BE_CONTENT_LENGTH | MAY_BE_TRANSFER_ENCODING;
                this.#matchName(c);
                state = TRAILER_NAME;
              } else return this.#fail(c === SP || c === HTAB ? H1Error.ObsFold : c === LF ? H1Error.BareLF : H1Error.BadTrailer);
              break;
            case TRAILER_NAME:
              if (TCHAR[c] === 1) {
                this.#matchName(c);
                break;
              }
              if (c === COLON) {
                if (this.#isFramingName()) return this.#fail(H1Error.BadTrailer);
                state = TRAILER_VALUE;
              } else return this.#fail(c === SP || c === HTAB ? H1Error.WhitespaceBeforeColon : c === LF ? H1Error.BareLF : H1Error.BadTrailer);
              break;
            case TRAILER_VALUE:
              if (FIELD_VALUE[c] === 1) break;
              if (c === CR) state = TRAILER_LF;
              else return this.#fail(c === LF ? H1Error.BareLF : H1Error.BadTrailer);
              break;
            case TRAILER_LF:
              if (c !== LF) return this.#fail(H1Error.BareCR);
              state = TRAILER_LINE_START;
              break;
            case END_LF:
              if (c !== LF) return this.#fail(H1Error.BareCR);
              this.#state = DONE;
              return i + 1;
          }
      }
    }
    this.#state = state;
    return NEED_MORE;
  }

  /** Narrow the framing names the trailer name being read could be (it may span reads, so it is matched as it comes). */
  #matchName(c: number): void {
    const lower = c | 0x20;
    const k = this.#nameLength++;
    if (CONTENT_LENGTH[k] !== lower) this.#nameCandidates &= ~MAY_BE_CONTENT_LENGTH;
    if (TRANSFER_ENCODING[k] !== lower) this.#nameCandidates &= ~MAY_BE_TRANSFER_ENCODING;
  }

  /**
   * Content-Length or Transfer-Encoding as a trailer: framing after the body is
   * meaningless (RFC 9110 6.5.1), and llhttp reads some of it as framing.
   */
  #isFramingName(): boolean {
    const candidates = this.#nameCandidates;
    return (
      ((candidates & MAY_BE_CONTENT_LENGTH) !== 0 && this.#nameLength === CONTENT_LENGTH.length) ||
      ((candidates & MAY_BE_TRANSFER_ENCODING) !== 0 && this.#nameLength === TRANSFER_ENCODING.length)
    );
  }

  #fail(code: H1ErrorCode): typeof FAILED {
    this.error = code;
    this.#state = FAILED_STATE;
    return FAILED;
  }
}
