import { CR, LF, SP, TARGET, TCHAR } from './chars.js';
import { H1Error } from './errors.js';
import { Body, FIRST_FIELD_STATE, HeadParser, HTTP_1_PREFIX } from './head-parser.js';
import { Connection } from './field-values.js';
import { ALL_METHODS_HI, ALL_METHODS_LO, KNOWN_METHODS, METHOD_CONNECT, METHOD_HEAD, METHOD_OPTIONS, methodMaskHi, methodMaskLo, methodOfLength, type KnownMethod } from './methods.js';
import { isValidTarget } from './target.js';

// Request-line states (the field states start at FIRST_FIELD_STATE).
const START = 0;
const LEADING_LF = 1;
const METHOD = 2;
const TARGET_START = 3;
const TARGET_TEXT = 4;
const VERSION = 10; // 10 .. 16: the bytes of "HTTP/1."
const VERSION_MINOR = VERSION + HTTP_1_PREFIX.length;
const LINE_CR = VERSION_MINOR + 1;
const LINE_LF = LINE_CR + 1;

/**
 * An HTTP/1.0 or 1.1 request head: `METHOD SP target SP HTTP/1.x CRLF`, field lines,
 * CRLF. Empty lines before the request line are skipped (RFC 9112 2.2), as CRLF only.
 * After a complete head: `method`, `target`, `versionMinor`, the fields, and the
 * framing (`bodyKind`, `contentLength`, `chunked`), `upgrade`, `keepAlive`.
 */
export class RequestHead extends HeadParser {
  /** Index of the method in KNOWN_METHODS. */
  methodIndex = -1;
  /** Connection: upgrade with an Upgrade field (node:http's `upgrade`, less CONNECT). */
  upgrade = false;

  /** Known methods the method's bytes so far still match (bits by index). */
  #methodsLo = 0;
  #methodsHi = 0;
  #targetStart = 0;
  #targetEnd = 0;

  override reset(): void {
    super.reset();
    this.methodIndex = -1;
    this.upgrade = false;
  }

  get method(): KnownMethod {
    return KNOWN_METHODS[this.methodIndex]!;
  }

  get isConnect(): boolean {
    return this.methodIndex === METHOD_CONNECT;
  }

  get isHead(): boolean {
    return this.methodIndex === METHOD_HEAD;
  }

  get target(): string {
    return this.head.toString('latin1', this.#targetStart, this.#targetEnd);
  }

  get targetStart(): number {
    return this.#targetStart;
  }

  get targetEnd(): number {
    return this.#targetEnd;
  }

  get hasHost(): boolean {
    return this.hostCount > 0;
  }

  protected startLine(buf: Uint8Array, i: number, stop: number): number {
    let state = this.state;
    for (; i < stop; i++) {
      const c = buf[i]!;
      switch (state) {
        case START:
          if (TCHAR[c] === 1) {
            this.#methodsLo = ALL_METHODS_LO & methodMaskLo(0, c);
            this.#methodsHi = ALL_METHODS_HI & methodMaskHi(0, c);
            if (this.#methodsLo === 0 && this.#methodsHi === 0) return this.fail(H1Error.BadMethod);
            state = METHOD;
          } else if (c === CR) {
            this.copyFrom = i + 1;
            state = LEADING_LF;
          } else {
            return this.fail(c === LF ? H1Error.BareLF : H1Error.BadMethod);
          }
          break;
        case LEADING_LF:
          if (c !== LF) return this.fail(H1Error.BareCR);
          this.copyFrom = i + 1;
          state = START;
          break;
        case METHOD:
          if (TCHAR[c] === 1) {
            // Refused at the first byte no known method has there, however the reads split it.
            const k = this.offsetOf(i);
            this.#methodsLo &= methodMaskLo(k, c);
            this.#methodsHi &= methodMaskHi(k, c);
            if (this.#methodsLo === 0 && this.#methodsHi === 0) return this.fail(H1Error.BadMethod);
            break;
          }
          if (c !== SP) return this.fail(c === CR || c === LF ? H1Error.BadStartLine : H1Error.BadMethod);
          this.methodIndex = methodOfLength(this.#methodsLo, this.#methodsHi, this.offsetOf(i));
          if (this.methodIndex < 0) return this.fail(H1Error.BadMethod);
          state = TARGET_START;
          break;
        case TARGET_START:
          if (TARGET[c] !== 1) return this.fail(c === SP || c === CR || c === LF ? H1Error.BadStartLine : H1Error.BadTarget);
          this.#targetStart = this.offsetOf(i);
          state = TARGET_TEXT;
          break;
        case TARGET_TEXT:
          while (TARGET[buf[i]!] === 1) {
            if (++i === stop) {
              this.state = state;
              return i;
            }
          }
          if (buf[i] !== SP) return this.fail(buf[i] === CR || buf[i] === LF ? H1Error.BadVersion : H1Error.BadTarget);
          this.#targetEnd = this.offsetOf(i);
          state = VERSION;
          break;
        case VERSION_MINOR:
          if (c !== 0x30 && c !== 0x31) return this.fail(H1Error.BadVersion);
          this.versionMinor = c - 0x30;
          state = LINE_CR;
          break;
        case LINE_CR:
          if (c !== CR) return this.fail(c === LF ? H1Error.BareLF : H1Error.BadVersion);
          state = LINE_LF;
          break;
        case LINE_LF:
          if (c !== LF) return this.fail(H1Error.BareCR);
          this.state = FIRST_FIELD_STATE;
          return i + 1;
        default:
          // VERSION .. VERSION_MINOR - 1: the bytes of "HTTP/1."
          if (c !== HTTP_1_PREFIX[state - VERSION]) return this.fail(c === SP && state === VERSION ? H1Error.BadStartLine : H1Error.BadVersion);
          state++;
      }
    }
    this.state = state;
    return i;
  }

  protected finishHead(): boolean {
    const head = this.head;
    if (!isValidTarget(head, this.#targetStart, this.#targetEnd, this.methodIndex === METHOD_CONNECT, this.methodIndex === METHOD_OPTIONS)) {
      return this.refuse(H1Error.BadTarget);
    }
    if (!this.readFields()) return false;
    // RFC 9112 3.2: more than one Host is refused (routing by Host would be ambiguous).
    if (this.hostCount > 1) return this.refuse(H1Error.DuplicateHost);
    this.upgrade = this.hasUpgrade && (this.connectionOptions & Connection.Upgrade) !== 0;
    this.bodyKind = this.chunked ? Body.Chunked : this.contentLength > 0 ? Body.Length : Body.None;
    return true;
  }

}
