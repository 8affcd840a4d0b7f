import { CR, FIELD_VALUE, LF, SP } from './chars.js';
import { H1Error } from './errors.js';
import { Body, FIRST_FIELD_STATE, HeadParser, HTTP_1_PREFIX } from './head-parser.js';

// Status-line states (the field states start at FIRST_FIELD_STATE).
const START = 0;
const LEADING_LF = 1;
const VERSION = 10; // 10 .. 16: the bytes of "HTTP/1."
const VERSION_MINOR = VERSION + HTTP_1_PREFIX.length;
const STATUS_SP = VERSION_MINOR + 1;
const STATUS = STATUS_SP + 1; // .. STATUS + 2: three digits
const AFTER_STATUS = STATUS + 3;
const REASON = AFTER_STATUS + 1;
const LINE_LF = REASON + 1;

/**
 * An HTTP/1.0 or 1.1 response head: `HTTP/1.x SP 3DIGIT [SP reason] CRLF`, field
 * lines, CRLF. The body's framing follows RFC 9112 6.3 and depends on the request:
 * call `reset(requestMethod)` before each response (HEAD: no body; CONNECT: 2xx
 * opens a tunnel).
 */
export class ResponseHead extends HeadParser {
  /** The status code (100 .. 999). */
  status = 0;
  /** A 1xx other than 101: the final response follows on the same connection. */
  interim = false;

  #requestIsHead = false;
  #requestIsConnect = false;
  #reasonStart = 0;
  #reasonEnd = 0;

  override reset(requestMethod = 'GET'): void {
    super.reset();
    this.status = 0;
    this.interim = false;
    this.#reasonStart = this.#reasonEnd = 0;
    this.#requestIsHead = requestMethod === 'HEAD';
    this.#requestIsConnect = requestMethod === 'CONNECT';
  }

  get reason(): string {
    return this.head.toString('latin1', this.#reasonStart, this.#reasonEnd);
  }

  protected startLine(buf: Uint8Array, i: number, stop: number): number {
    let state = this.state;
    for (; i < stop; i++) {
      const c = buf[i]!;
      switch (state) {
        case START:
          if (c === CR) {
            this.copyFrom = i + 1;
            state = LEADING_LF;
            break;
          }
          if (c === LF) return this.fail(H1Error.BareLF);
          state = VERSION;
          i--; // read c again as the version's first byte
          break;
        case LEADING_LF:
          if (c !== LF) return this.fail(H1Error.BareCR);
          this.copyFrom = i + 1;
          state = START;
          break;
        case VERSION_MINOR:
          if (c !== 0x30 && c !== 0x31) return this.fail(H1Error.BadVersion);
          this.versionMinor = c - 0x30;
          state = STATUS_SP;
          break;
        case STATUS_SP:
          if (c !== SP) return this.fail(H1Error.BadVersion);
          state = STATUS;
          break;
        case STATUS:
        case STATUS + 1:
        case STATUS + 2: {
          const d = c - 0x30;
          if (d < 0 || d > 9) return this.fail(H1Error.BadStatus);
          this.status = this.status * 10 + d;
          if (state === STATUS + 2 && this.status < 100) return this.fail(H1Error.BadStatus);
          state++;
          break;
        }
        case AFTER_STATUS:
          this.#reasonStart = this.#reasonEnd = this.offsetOf(i);
          if (c === CR) {
            state = LINE_LF;
          } else if (c === SP) {
            this.#reasonStart = this.#reasonEnd = this.offsetOf(i + 1);
            state = REASON;
          } else {
            return this.fail(H1Error.BadStatus);
          }
          break;
        case REASON:
          if (FIELD_VALUE[c] === 1) break;
          if (c !== CR) return this.fail(c === LF ? H1Error.BareLF : H1Error.BadReason);
          this.#reasonEnd = this.offsetOf(i);
          state = LINE_LF;
          break;
        case LINE_LF:
          if (c !== LF) return this.fail(H1Error.BareCR);
          this.state = FIRST_FIELD_STATE;
          return i + 1;
        default:
          // VERSION .. VERSION_MINOR - 1: the bytes of "HTTP/1."
          if (c !== HTTP_1_PREFIX[state - VERSION]) return this.fail(H1Error.BadVersion);
          state++;
      }
    }
    this.state = state;
    return i;
  }

  protected finishHead(): boolean {
    if (!this.readFields()) return false;
    const status = this.status;
    if (status < 200 && (this.chunked || this.contentLength >= 0)) return this.refuse(H1Error.FramingOnInterim);
    if (status === 101 || (this.#requestIsConnect && status >= 200 && status < 300)) {
      this.bodyKind = Body.Tunnel;
    } else if (status < 200) {
      this.interim = true;
      this.bodyKind = Body.None;
    } else if (this.#requestIsHead || status === 204 || status === 304) {
      this.bodyKind = Body.None;
    } else if (this.chunked) {
      this.bodyKind = Body.Chunked;
    } else if (this.contentLength >= 0) {
      this.bodyKind = this.contentLength > 0 ? Body.Length : Body.None;
    } else {
      this.bodyKind = Body.UntilClose;
      this.keepAlive = false;
    }
    return true;
  }
}
