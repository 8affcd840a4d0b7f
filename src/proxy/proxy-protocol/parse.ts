/** Reads the PROXY header a trusted proxy in front of tether sends, byte by byte (header.ts has the format). */
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../net/address.js';
import {
  V1_MAX_BYTES,
  V1_PREFIX,
  V2_CMD_LOCAL,
  V2_CMD_PROXY,
  V2_FAM_INET,
  V2_FAM_INET6,
  V2_FAM_UNIX,
  V2_FAM_UNSPEC,
  V2_MAX_BYTES,
  V2_SIGNATURE,
  V2_TRANS_STREAM,
  V2_VERSION,
  type ProxyAccept,
  type ProxyHeader,
  type ProxyParseResult,
  NEED_MORE,
} from './header.js';

// Scratch for address bytes: parsing is synchronous, so one buffer serves all calls.
const scratch = new Uint8Array(32);

const S_START = 0;
const S_V1 = 1;
const S_V2_SIG = 2;
const S_V2_VER = 3;
const S_V2_FAM = 4;
const S_V2_LEN_HI = 5;
const S_V2_LEN_LO = 6;
const S_V2_ADDR = 7;
const S_V2_TLV_TYPE = 8;
const S_V2_TLV_LEN_HI = 9;
const S_V2_TLV_LEN_LO = 10;
const S_V2_TLV_VALUE = 11;
const S_V2_SKIP = 12;
const S_FINISHED = 13;

const FINISHED: ProxyParseResult = Object.freeze({ kind: 'error', reason: 'PROXY header already parsed' });

function fail(reason: string): ProxyParseResult {
  return { kind: 'error', reason };
}

/** Decimal port in `buf[start, end)`: 1-5 digits, no leading zero, at most 65535; else -1. */
function parsePort(buf: Buffer, start: number, end: number): number {
  const n = end - start;
  if (n < 1 || n > 5 || (n > 1 && buf[start] === 48)) return -1;
  let port = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) return -1;
    port = port * 10 + (c - 48);
  }
  return port <= 65535 ? port : -1;
}

function bytesEqual(buf: Buffer, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (buf[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * Reads one inbound PROXY header from chunks as they arrive. `push` answers
 * `NEED_MORE`, `done` (with the bytes after the header), or `error`; it never
 * throws, and an answer other than need-more comes by the time `V1_MAX_BYTES`
 * (v1) or `maxV2Bytes` (v2) bytes have been pushed. Bytes are checked as they
 * come, so garbage is refused at its first wrong byte rather than when a line or
 * a length completes. Numeric states in one loop, after ws's receiver; the only
 * allocation is one small buffer per parser for the v1 line or v2 addresses.
 */
export class ProxyHeaderParser {
  readonly #accept: ProxyAccept;
  readonly #maxV2Bytes: number;
  #state = S_START;
  /** v1: the line so far. v2: the address block. Made on first need. */
  #buf: Buffer | null = null;
  /** Bytes in #buf, or of the v2 signature matched so far. */
  #len = 0;
  #command = 0;
  #family = 0;
  /** v2: bytes of the header still to come after the fixed 16. */
  #remaining = 0;
  /** v2: address bytes to keep (12 or 36), 0 when addresses are skipped. */
  #addressBytes = 0;
  #tlvLeft = 0;

  constructor(accept: ProxyAccept, maxV2Bytes = V2_MAX_BYTES) {
    this.#accept = accept;
    this.#maxV2Bytes = Math.max(16 + 216, Math.min(maxV2Bytes, 16 + 65535));
  }

  /** Whether any byte has been taken (a header was begun, or finished). */
  get started(): boolean {
    return this.#state !== S_START;
  }

  push(chunk: Buffer): ProxyParseResult {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.#state) {
        case S_START: {
          const c = chunk[i]!;
          if (c === 0x50 /* P */ && this.#accept !== 'v2') {
            this.#state = S_V1;
            this.#buf = Buffer.allocUnsafe(V1_MAX_BYTES);
          } else if (c === 0x0d && this.#accept !== 'v1') {
            this.#state = S_V2_SIG;
          } else {
            return this.#fail(this.#accept === 'any' ? 'not a PROXY header' : `not a PROXY ${this.#accept} header`);
          }
          break;
        }

        case S_V1: {
          const buf = this.#buf!;
          while (i < n) {
            const c = chunk[i++]!;
            const at = this.#len;
            if (at < 6) {
              if (c !== V1_PREFIX[at]) return this.#fail('bad PROXY v1 signature');
            } else if (c === 0x0a) {
              if (buf[at - 1] !== 0x0d) return this.#fail('PROXY v1 line ends in LF without CR');
              buf[at] = c;
              this.#len = at + 1;
              return this.#finishV1(chunk, i);
            } else if (buf[at - 1] === 0x0d) {
              return this.#fail('CR without LF in PROXY v1 header');
            } else if (c !== 0x0d && (c < 0x20 || c > 0x7e)) {
              return this.#fail('bad character in PROXY v1 header');
            }
            buf[at] = c;
            this.#len = at + 1;
            if (this.#len === V1_MAX_BYTES) return this.#fail(`PROXY v1 header longer than ${V1_MAX_BYTES} bytes`);
          }
          break;
        }

        case S_V2_SIG: {
          while (i < n && this.#len < 12) {
            if (chunk[i] !== V2_SIGNATURE[this.#len]) return this.#fail('bad PROXY v2 signature');
            i++;
            this.#len++;
          }
          if (this.#len === 12) {
            this.#len = 0;
            this.#state = S_V2_VER;
          }
          break;
        }

        case S_V2_VER: {
          const c = chunk[i++]!;
          if ((c & 0xf0) !== V2_VERSION) return this.#fail('unsupported PROXY v2 version');
          this.#command = c & 0x0f;
          if (this.#command !== V2_CMD_LOCAL && this.#command !== V2_CMD_PROXY) return this.#fail('bad PROXY v2 command');
          this.#state = S_V2_FAM;
          break;
        }

        case S_V2_FAM: {
          const c = chunk[i++]!;
          const family = c >> 4;
          const transport = c & 0x0f;
          // LOCAL: "discard the protocol block including the family which is ignored".
          // PROXY: the spec's seven values; anything else "must be rejected as invalid".
          if (this.#command === V2_CMD_PROXY) {
            if (family > V2_FAM_UNIX || transport > 2 || (family === V2_FAM_UNSPEC) !== (transport === 0)) {
              return this.#fail('bad PROXY v2 address family');
            }
            if (family !== V2_FAM_UNSPEC && transport !== V2_TRANS_STREAM) {
              return this.#fail('PROXY v2 header for a datagram connection');
            }
          }
          this.#family = family;
          this.#state = S_V2_LEN_HI;
          break;
        }

        case S_V2_LEN_HI:
          this.#remaining = chunk[i++]! << 8;
          this.#state = S_V2_LEN_LO;
          break;

        case S_V2_LEN_LO: {
          const length = this.#remaining | chunk[i++]!;
          this.#remaining = length;
          if (16 + length > this.#maxV2Bytes) return this.#fail(`PROXY v2 header longer than ${this.#maxV2Bytes} bytes`);
          const family = this.#family;
          const needed = family === V2_FAM_INET ? 12 : family === V2_FAM_INET6 ? 36 : family === V2_FAM_UNIX ? 216 : 0;
          if (this.#command === V2_CMD_PROXY) {
            if (length < needed) return this.#fail('PROXY v2 address block too short');
            if (family === V2_FAM_INET || family === V2_FAM_INET6) {
              this.#addressBytes = needed;
              this.#buf = Buffer.allocUnsafe(needed);
              this.#state = S_V2_ADDR;
              break;
            }
          }
          // LOCAL, UNSPEC, AF_UNIX: the addresses are ignored, and so is the rest.
          if (length === 0) return this.#finishV2(chunk, i);
          this.#state = S_V2_SKIP;
          break;
        }

        case S_V2_ADDR: {
          const take = Math.min(this.#addressBytes - this.#len, n - i);
          chunk.copy(this.#buf!, this.#len, i, i + take);
          i += take;
          this.#len += take;
          if (this.#len === this.#addressBytes) {
            this.#remaining -= this.#addressBytes;
            if (this.#remaining === 0) return this.#finishV2(chunk, i);
            this.#state = S_V2_TLV_TYPE;
          }
          break;
        }

        // TLVs are skipped, but their framing is checked (as HAProxy does): a length
        // that overruns the header means the sender and we disagree on where data starts.
        case S_V2_TLV_TYPE:
          if (this.#remaining < 3) return this.#fail('truncated PROXY v2 TLV');
          i++;
          this.#remaining--;
          this.#state = S_V2_TLV_LEN_HI;
          break;

        case S_V2_TLV_LEN_HI:
          this.#tlvLeft = chunk[i++]! << 8;
          this.#remaining--;
          this.#state = S_V2_TLV_LEN_LO;
          break;

        case S_V2_TLV_LEN_LO:
          this.#tlvLeft |= chunk[i++]!;
          this.#remaining--;
          if (this.#tlvLeft > this.#remaining) return this.#fail('PROXY v2 TLV overruns the header');
          if (this.#tlvLeft > 0) this.#state = S_V2_TLV_VALUE;
          else if (this.#remaining === 0) return this.#finishV2(chunk, i);
          else this.#state = S_V2_TLV_TYPE;
          break;

        case S_V2_TLV_VALUE: {
          const take = Math.min(this.#tlvLeft, n - i);
          i += take;
          this.#tlvLeft -= take;
          this.#remaining -= take;
          if (this.#tlvLeft === 0) {
            if (this.#remaining === 0) return this.#finishV2(chunk, i);
            this.#state = S_V2_TLV_TYPE;
          }
          break;
        }

        case S_V2_SKIP: {
          const take = Math.min(this.#remaining, n - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) return this.#finishV2(chunk, i);
          break;
        }

        default:
          return FINISHED;
      }
    }
    return this.#state === S_FINISHED ? FINISHED : NEED_MORE;
  }

  /**
   * The stream ended (or the deadline passed) here: an error, since no header is
   * complete (a finished parser answers as `push` would after it).
   */
  end(): ProxyParseResult {
    if (this.#state === S_FINISHED) return FINISHED;
    return this.#fail(this.#state === S_START ? 'no PROXY header' : 'truncated PROXY header');
  }

  #fail(reason: string): ProxyParseResult {
    this.#state = S_FINISHED;
    this.#buf = null;
    return fail(reason);
  }

  #done(header: ProxyHeader, chunk: Buffer, at: number): ProxyParseResult {
    this.#state = S_FINISHED;
    this.#buf = null;
    return { kind: 'done', header, rest: chunk.subarray(at) };
  }

  /** The whole line is in #buf: `PROXY ` checked, printable ASCII, ends in CRLF. */
  #finishV1(chunk: Buffer, at: number): ProxyParseResult {
    const buf = this.#buf!;
    const end = this.#len - 2; // the CR
    let p = 6;
    let e = p;
    while (e < end && buf[e] !== 0x20) e++;
    if (bytesEqual(buf, p, e, 'UNKNOWN')) {
      // "the receiver must ignore anything presented before the CRLF"
      return this.#done(UNKNOWN_V1, chunk, at);
    }
    const tcp4 = bytesEqual(buf, p, e, 'TCP4');
    if (!tcp4 && !bytesEqual(buf, p, e, 'TCP6')) return this.#fail('unknown PROXY v1 protocol');
    // Four fields, single spaces: source, destination, source port, destination port.
    const starts = [0, 0, 0, 0];
    const ends = [0, 0, 0, 0];
    for (let k = 0; k < 4; k++) {
      if (e === end) return this.#fail('missing fields in PROXY v1 header');
      p = e + 1;
      e = p;
      while (e < end && buf[e] !== 0x20) e++;
      if (e === p) return this.#fail('empty field in PROXY v1 header');
      starts[k] = p;
      ends[k] = e;
    }
    if (e !== end) return this.#fail('extra fields in PROXY v1 header');
    const sourcePort = parsePort(buf, starts[2]!, ends[2]!);
    const destPort = parsePort(buf, starts[3]!, ends[3]!);
    if (sourcePort < 0 || destPort < 0) return this.#fail('bad port in PROXY v1 header');
    const source = buf.toString('latin1', starts[0], ends[0]);
    const dest = buf.toString('latin1', starts[1], ends[1]);
    let sourceAddress: string;
    let destAddress: string;
    if (tcp4) {
      // The strict parser admits only the canonical form: the text is the key as is.
      if (parseIPv4(source) < 0 || parseIPv4(dest) < 0) return this.#fail('bad IPv4 address in PROXY v1 header');
      sourceAddress = source;
      destAddress = dest;
    } else {
      if (!parseIPv6(source, scratch, 0) || !parseIPv6(dest, scratch, 16)) return this.#fail('bad IPv6 address in PROXY v1 header');
      sourceAddress = formatIPv6(scratch, 0);
      destAddress = formatIPv6(scratch, 16);
    }
    return this.#done({ version: 1, command: 'proxy', sourceAddress, sourcePort, destAddress, destPort }, chunk, at);
  }

  #finishV2(chunk: Buffer, at: number): ProxyParseResult {
    if (this.#command === V2_CMD_LOCAL) return this.#done(LOCAL_V2, chunk, at);
    const buf = this.#buf;
    if (this.#addressBytes === 12) {
      const header: ProxyHeader = {
        version: 2,
        command: 'proxy',
        sourceAddress: formatIPv4(buf!, 0),
        destAddress: formatIPv4(buf!, 4),
        sourcePort: buf!.readUInt16BE(8),
        destPort: buf!.readUInt16BE(10),
      };
      return this.#done(header, chunk, at);
    }
    if (this.#addressBytes === 36) {
      const header: ProxyHeader = {
        version: 2,
        command: 'proxy',
        sourceAddress: formatIPv6(buf!, 0),
        destAddress: formatIPv6(buf!, 16),
        sourcePort: buf!.readUInt16BE(32),
        destPort: buf!.readUInt16BE(34),
      };
      return this.#done(header, chunk, at);
    }
    return this.#done(UNKNOWN_V2, chunk, at);
  }
}

const UNKNOWN_V1: ProxyHeader = Object.freeze({ version: 1, command: 'unknown', sourceAddress: '', sourcePort: 0, destAddress: '', destPort: 0 });
const UNKNOWN_V2: ProxyHeader = Object.freeze({ version: 2, command: 'unknown', sourceAddress: '', sourcePort: 0, destAddress: '', destPort: 0 });
const LOCAL_V2: ProxyHeader = Object.freeze({ version: 2, command: 'local', sourceAddress: '', sourcePort: 0, destAddress: '', destPort: 0 });
