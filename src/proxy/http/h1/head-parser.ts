import { COLON, CR, FIELD_VALUE, HTAB, LF, SP, TCHAR } from './chars.js';
import { FAILED, H1Error, NEED_MORE, type H1ErrorCode } from './errors.js';
import { ascii, Coding, Connection, connectionOptions, equalsIgnoringCase, parseContentLength, transferCodings } from './field-values.js';

/** `bodyKind` values: how the message after a head is framed. */
export const Body = {
  /** No body: the next message (or, for a 1xx, the final response) follows the head. */
  None: 0,
  /** `contentLength` bytes. */
  Length: 1,
  /** A chunked body (see ChunkedFramer). */
  Chunked: 2,
  /** A response read until the connection closes. */
  UntilClose: 3,
  /** The connection switches protocol after the head (101, or 2xx to CONNECT): bytes are relayed as they are. */
  Tunnel: 4,
} as const;
export type BodyKind = (typeof Body)[keyof typeof Body];

// States shared by both heads. Start-line states (below FIRST_FIELD_STATE) belong to the subclasses.
export const FIRST_FIELD_STATE = 100;
const FIELD_LINE_START = 100;
const FIELD_NAME = 101;
const FIELD_VALUE_START = 102;
const FIELD_VALUE_TEXT = 103;
const FIELD_VALUE_LF = 104;
const HEAD_END_LF = 105;
export const HEAD_DONE = 200;
export const HEAD_FAILED = 201;

/** "HTTP/1." : both start lines carry it, the request's last, the response's first. */
export const HTTP_1_PREFIX = ascii('HTTP/1.');

const HOST = ascii('host');
const EXPECT = ascii('expect');
const UPGRADE = ascii('upgrade');
const CONNECTION = ascii('connection');
const CONTENT_LENGTH = ascii('content-length');
const TRANSFER_ENCODING = ascii('transfer-encoding');
const CONTINUE_100 = ascii('100-continue');

/**
 * Whether the OWS after a value (from `valueEnd` to the line's CR) holds an HTAB.
 * Node 20's llhttp refuses that after Content-Length and Transfer-Encoding (Node 22's
 * takes it), so tether does too: it must never take framing any node:http would refuse.
 */
function tabAfter(head: Uint8Array, valueEnd: number): boolean {
  for (let i = valueEnd; head[i] !== CR; i++) if (head[i] === HTAB) return true;
  return false;
}

const INITIAL_HEAD_BYTES = 4096;
const NO_VALUES: readonly string[] = [];
const INITIAL_FIELDS = 32;

/**
 * What request and response heads share: an incremental parser that copies the
 * head's bytes into one reusable buffer (at most `maxHeadBytes`) and records each
 * field line as four offsets into it, then reads the fields that decide framing.
 * Subclasses parse their start line and finish the framing (`finishHead`).
 *
 * `execute(buf, start, end)` returns the offset in `buf` just after the head once it
 * is complete (the body or next message starts there), NEED_MORE when every byte was
 * taken and the head goes on, or FAILED with `error` set. After a complete head (or
 * a failure) call `reset()` before the next one.
 */
export abstract class HeadParser {
  readonly maxHeadBytes: number;
  /** The refusal, when `execute` returned FAILED. */
  error: H1ErrorCode = H1Error.None;

  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  versionMinor = 1;
  /** Content-Length, or -1 when absent. */
  contentLength = -1;
  /** Transfer-Encoding ends in chunked. */
  chunked = false;
  /** Bits of `Connection` named by the Connection fields. */
  connectionOptions = 0;
  /** An Upgrade field with a value is present. */
  hasUpgrade = false;
  /** Expect: 100-continue. */
  expectContinue = false;
  /** Host fields seen. */
  hostCount = 0;
  /** The connection may carry another message after this one. */
  keepAlive = true;
  /** How the message's body is framed. */
  bodyKind: BodyKind = Body.None;

  protected state = 0;
  protected head: Buffer;
  protected headLength = 0;
  /** The first byte of the buffer being executed that belongs to the head (leading empty lines are skipped). */
  protected copyFrom = 0;

  #fields: Int32Array;
  #fieldCount = 0;
  #nameStart = 0;
  #nameEnd = 0;
  #valueStart = 0;
  #valueEnd = 0;

  constructor(maxHeadBytes: number) {
    if (!Number.isInteger(maxHeadBytes) || maxHeadBytes < 16) throw new RangeError(`maxHeadBytes: ${maxHeadBytes}`);
    this.maxHeadBytes = maxHeadBytes;
    this.head = Buffer.allocUnsafe(Math.min(maxHeadBytes, INITIAL_HEAD_BYTES));
    this.#fields = new Int32Array(INITIAL_FIELDS * 4);
  }

  /** Forget the last head (the buffers are kept). */
  reset(): void {
    this.error = H1Error.None;
    this.state = 0;
    this.headLength = 0;
    this.#fieldCount = 0;
    this.versionMinor = 1;
    this.contentLength = -1;
    this.chunked = false;
    this.connectionOptions = 0;
    this.hasUpgrade = false;
    this.expectContinue = false;
    this.hostCount = 0;
    this.keepAlive = true;
    this.bodyKind = Body.None;
  }

  /** The whole head is in. */
  get complete(): boolean {
    return this.state === HEAD_DONE;
  }

  /** `execute` over a whole buffer. */
  push(buf: Uint8Array): number {
    return this.execute(buf, 0, buf.length);
  }

  execute(buf: Uint8Array, start = 0, end = buf.length): number {
    if (this.state === HEAD_FAILED) return FAILED;
    if (this.state === HEAD_DONE) throw new Error('HeadParser: reset() before the next head');
    const room = this.maxHeadBytes - this.headLength;
    const stop = end - start > room ? start + room : end;
    this.copyFrom = start;
    let i = start;
    if (this.state < FIRST_FIELD_STATE) i = this.startLine(buf, i, stop);
    if (this.state >= FIRST_FIELD_STATE && this.state < HEAD_DONE) i = this.fieldLines(buf, i, stop);
    if (this.state === HEAD_FAILED) return FAILED;
    this.#copy(buf, this.copyFrom, i);
    if (this.state === HEAD_DONE) return this.finishHead() ? i : FAILED;
    return stop < end ? this.fail(H1Error.HeadTooLarge) : NEED_MORE;
  }

  /** Parse the start line from `i`; returns where it stopped, with `state` at or past FIRST_FIELD_STATE once the line is done. */
  protected abstract startLine(buf: Uint8Array, i: number, stop: number): number;
  /** Check the start line's fields and set the framing (calling `readFields` first); false with `error` set if refused. */
  protected abstract finishHead(): boolean;

  protected fail(code: H1ErrorCode): typeof FAILED {
    this.error = code;
    this.state = HEAD_FAILED;
    return FAILED;
  }

  /** The head's bytes as received (valid until `reset`). */
  get bytes(): Buffer {
    return this.head.subarray(0, this.headLength);
  }

  get headerCount(): number {
    return this.#fieldCount;
  }

  /** Offsets into `bytes`: for field k, [4k] name start, [4k+1] name end, [4k+2] value start, [4k+3] value end (OWS excluded). */
  get fieldOffsets(): Int32Array {
    return this.#fields;
  }

  headerName(k: number): string {
    return this.head.toString('latin1', this.#fields[4 * k]!, this.#fields[4 * k + 1]!);
  }

  headerValue(k: number): string {
    return this.head.toString('latin1', this.#fields[4 * k + 2]!, this.#fields[4 * k + 3]!);
  }

  /** The index of the first field named `name` (ASCII case-insensitive), or -1. */
  indexOfHeader(name: string, from = 0): number {
    const f = this.#fields;
    const head = this.head;
    outer: for (let k = from; k < this.#fieldCount; k++) {
      const s = f[4 * k]!;
      if (f[4 * k + 1]! - s !== name.length) continue;
      for (let j = 0; j < name.length; j++) {
        const a = head[s + j]!;
        const b = name.charCodeAt(j);
        if (a !== b && ((a | 0x20) !== (b | 0x20) || (a | 0x20) < 0x61 || (a | 0x20) > 0x7a)) continue outer;
      }
      return k;
    }
    return -1;
  }

  /** The first value of field `name`, or undefined. */
  header(name: string): string | undefined {
    const k = this.indexOfHeader(name);
    return k < 0 ? undefined : this.headerValue(k);
  }

  /** The values of every field named `name` (ASCII case-insensitive), in order (the key chain's and learn rules' view). */
  values(name: string): readonly string[] {
    let k = this.indexOfHeader(name);
    if (k < 0) return NO_VALUES;
    const out: string[] = [];
    do {
      out.push(this.headerValue(k));
      k = this.indexOfHeader(name, k + 1);
    } while (k >= 0);
    return out;
  }

  /** Names and values in order, as node:http's rawHeaders (allocates: for tests and logs). */
  rawHeaders(): string[] {
    const out: string[] = [];
    for (let k = 0; k < this.#fieldCount; k++) out.push(this.headerName(k), this.headerValue(k));
    return out;
  }

  /** Head offset of `buf[i]` while executing. */
  protected offsetOf(i: number): number {
    return this.headLength + i - this.copyFrom;
  }

  #copy(buf: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    const need = this.headLength + n;
    if (need > this.head.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxHeadBytes, Math.max(need, this.head.length * 2)));
      this.head.copy(grown, 0, 0, this.headLength);
      this.head = grown;
    }
    if (n < 64) {
      const head = this.head;
      let at = this.headLength;
      for (let i = from; i < to; i++) head[at++] = buf[i]!;
    } else {
      this.head.set(buf.subarray(from, to), this.headLength);
    }
    this.headLength = need;
  }

  #pushField(): void {
    let f = this.#fields;
    const at = this.#fieldCount * 4;
    if (at === f.length) {
      const grown = new Int32Array(f.length * 2);
      grown.set(f);
      this.#fields = f = grown;
    }
    f[at] = this.#nameStart;
    f[at + 1] = this.#nameEnd;
    f[at + 2] = this.#valueStart;
    f[at + 3] = this.#valueEnd;
    this.#fieldCount++;
  }

  /**
   * The value's end after the bytes buf[from, to) of it: the last non-OWS byte in
   * them, else the end known from earlier reads.
   */
  #trimmedEnd(buf: Uint8Array, from: number, to: number, endSoFar: number): number {
    let i = to;
    while (i > from && (buf[i - 1] === SP || buf[i - 1] === HTAB)) i--;
    return i > from ? this.headLength - this.copyFrom + i : endSoFar;
  }

  /** Field lines up to and including the empty line. */
  protected fieldLines(buf: Uint8Array, i: number, stop: number): number {
    const base = this.headLength - this.copyFrom;
    let state = this.state;
    let valueEnd = this.#valueEnd;
    for (; i < stop; i++) {
      let c = buf[i]!;
      switch (state) {
        case FIELD_LINE_START:
          if (TCHAR[c] === 1) {
            this.#nameStart = base + i;
            state = FIELD_NAME;
          } else if (c === CR) {
            state = HEAD_END_LF;
          } else {
            return this.fail(c === SP || c === HTAB ? H1Error.ObsFold : c === LF ? H1Error.BareLF : H1Error.BadHeaderName);
          }
          break;
        case FIELD_NAME:
          while (TCHAR[c] === 1) {
            if (++i === stop) {
              this.state = state;
              return i;
            }
            c = buf[i]!;
          }
          if (c !== COLON) return this.fail(c === SP || c === HTAB ? H1Error.WhitespaceBeforeColon : c === LF ? H1Error.BareLF : H1Error.BadHeaderName);
          this.#nameEnd = base + i;
          state = FIELD_VALUE_START;
          break;
        case FIELD_VALUE_START:
          if (c === SP || c === HTAB) break;
          this.#valueStart = valueEnd = base + i;
          if (c === CR) {
            state = FIELD_VALUE_LF;
            break;
          }
          state = FIELD_VALUE_TEXT;
          i--; // read c again as the value's first byte
          break;
        case FIELD_VALUE_TEXT: {
          // Trailing OWS is trimmed once the line ends, not tracked per byte.
          const from = i;
          while (FIELD_VALUE[c] === 1) {
            if (++i === stop) {
              valueEnd = this.#trimmedEnd(buf, from, i, valueEnd);
              this.#valueEnd = valueEnd;
              this.state = state;
              return i;
            }
            c = buf[i]!;
          }
          if (c !== CR) return this.fail(c === LF ? H1Error.BareLF : H1Error.BadHeaderValue);
          valueEnd = this.#trimmedEnd(buf, from, i, valueEnd);
          state = FIELD_VALUE_LF;
          break;
        }
        case FIELD_VALUE_LF:
          if (c !== LF) return this.fail(H1Error.BareCR);
          this.#valueEnd = valueEnd;
          this.#pushField();
          state = FIELD_LINE_START;
          break;
        case HEAD_END_LF:
          if (c !== LF) return this.fail(H1Error.BareCR);
          this.state = HEAD_DONE;
          return i + 1;
      }
    }
    this.#valueEnd = valueEnd;
    this.state = state;
    return i;
  }

  /**
   * Read the fields that decide framing into the public fields; false (with `error`)
   * for what a proxy must refuse: Content-Length twice or malformed, with
   * Transfer-Encoding, or a Transfer-Encoding that does not end in one chunked, or on
   * HTTP/1.0.
   */
  protected readFields(): boolean {
    const f = this.#fields;
    const head = this.head;
    let lengthSeen = false;
    let codings: number = -2; // -2: no Transfer-Encoding
    for (let k = 0; k < this.#fieldCount; k++) {
      const ns = f[4 * k]!;
      const ne = f[4 * k + 1]!;
      const vs = f[4 * k + 2]!;
      const ve = f[4 * k + 3]!;
      switch (ne - ns) {
        case 4:
          if (equalsIgnoringCase(head, ns, ne, HOST)) this.hostCount++;
          break;
        case 6:
          if (equalsIgnoringCase(head, ns, ne, EXPECT) && equalsIgnoringCase(head, vs, ve, CONTINUE_100)) this.expectContinue = true;
          break;
        case 7:
          // An empty Upgrade names no protocol (llhttp ignores it too).
          if (ve > vs && equalsIgnoringCase(head, ns, ne, UPGRADE)) this.hasUpgrade = true;
          break;
        case 10:
          if (equalsIgnoringCase(head, ns, ne, CONNECTION)) {
            const options = connectionOptions(head, vs, ve);
            if (options < 0) return this.refuse(H1Error.BadConnection);
            this.connectionOptions |= options;
          }
          break;
        case 14:
          if (equalsIgnoringCase(head, ns, ne, CONTENT_LENGTH)) {
            if (lengthSeen) return this.refuse(H1Error.DuplicateContentLength);
            lengthSeen = true;
            this.contentLength = parseContentLength(head, vs, ve);
            if (this.contentLength < 0 || tabAfter(head, ve)) return this.refuse(H1Error.BadContentLength);
          }
          break;
        case 17:
          if (equalsIgnoringCase(head, ns, ne, TRANSFER_ENCODING)) {
            // A later line extends the list: chunked on an earlier one would not be last.
            if (codings === Coding.LastIsChunked) return this.refuse(H1Error.BadTransferEncoding);
            codings = transferCodings(head, vs, ve);
            if (codings === Coding.Invalid || tabAfter(head, ve)) return this.refuse(H1Error.BadTransferEncoding);
          }
          break;
      }
    }
    if (codings !== -2) {
      if (lengthSeen) return this.refuse(H1Error.ContentLengthWithTransferEncoding);
      if (this.versionMinor === 0) return this.refuse(H1Error.TransferEncodingOnHttp10);
      if (codings !== Coding.LastIsChunked) return this.refuse(H1Error.BadTransferEncoding);
      this.chunked = true;
    }
    const options = this.connectionOptions;
    this.keepAlive = (options & Connection.Close) === 0 && (this.versionMinor === 1 || (options & Connection.KeepAlive) !== 0);
    return true;
  }

  protected refuse(code: H1ErrorCode): false {
    this.fail(code);
    return false;
  }
}
