import { MORE, atLimit, clampEnd, clampLimit, key, none, type InspectResult } from './types.js';

/**
 * `sni`: the server name of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3), read
 * without terminating TLS. The ClientHello may span several handshake records (large
 * post-quantum key shares); it must be complete and well framed before a key is
 * given, so a name is never taken from bytes that go on to be malformed.
 */

const CONTENT_HANDSHAKE = 0x16;
const RECORD_HEADER = 5;
/** RFC 8446 5.1: a record's fragment is at most 2^14 bytes, and handshake fragments are never empty. */
const MAX_FRAGMENT = 16384;
const HANDSHAKE_CLIENT_HELLO = 1;
const HANDSHAKE_HEADER = 4;
/** version(2) random(32) session_id(1+0) cipher_suites(2+2) compression_methods(1+1). */
const MIN_CLIENT_HELLO = 41;
const MAX_SESSION_ID = 32;
const EXT_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;
const MAX_HOST_NAME = 255;

const NOT_HANDSHAKE = none('tls: not a handshake record');
const BAD_RECORD_VERSION = none('tls: record version is not 3.0-3.4');
const BAD_RECORD_LENGTH = none('tls: record length is 0 or over 2^14');
const NOT_CLIENT_HELLO = none('tls: first handshake message is not a ClientHello');
const BAD_HELLO_LENGTH = none('tls: ClientHello length is too short or over the inspect limit');
const BAD_HELLO_VERSION = none('tls: ClientHello version is not 3.x');
const BAD_SESSION_ID = none('tls: session id is over 32 bytes or past the message');
const BAD_CIPHER_SUITES = none('tls: cipher suites are empty, odd or past the message');
const BAD_COMPRESSION = none('tls: compression methods are empty or past the message');
const NO_EXTENSIONS = none('tls: ClientHello has no extensions');
const BAD_EXTENSIONS = none('tls: extensions do not fill the ClientHello exactly');
const BAD_EXTENSION = none('tls: an extension runs past the extension block');
const TWO_SERVER_NAMES = none('tls: server_name extension given twice');
const BAD_SERVER_NAME = none('tls: server_name is not one host_name filling the extension');
const BAD_HOST_NAME = none('tls: host name is empty, over 255 bytes or has bytes outside [A-Za-z0-9._-]');
const NO_SERVER_NAME = none('tls: no server_name extension');

/**
 * A cursor over the handshake bytes, which are the fragments of consecutive handshake
 * records with the record headers skipped. One module-level instance: the reader is
 * synchronous, so it is never in use twice at once, and a call allocates nothing.
 */
class HandshakeCursor {
  buf: Buffer = Buffer.alloc(0);
  end = 0;
  /** Offset in `buf` of the next handshake byte (or of the next record header). */
  pos = 0;
  /** Fragment bytes left in the current record. */
  left = 0;
  /** Why the last read failed: MORE, or a `none`. */
  failure: InspectResult = MORE;

  reset(buf: Buffer, end: number): void {
    this.buf = buf;
    this.end = end;
    this.pos = 0;
    this.left = 0;
    this.failure = MORE;
  }

  /** Step over the next record header; false (with `failure` set) if it is not a complete, valid one. */
  private nextRecord(): boolean {
    const { buf, end, pos } = this;
    // Checked byte by byte so a client that is not speaking TLS is told `none` at its first byte.
    if (pos >= end) return this.fail(MORE);
    if (buf[pos] !== CONTENT_HANDSHAKE) return this.fail(NOT_HANDSHAKE);
    if (pos + 1 >= end) return this.fail(MORE);
    if (buf[pos + 1] !== 3) return this.fail(BAD_RECORD_VERSION);
    if (pos + 2 >= end) return this.fail(MORE);
    if (buf[pos + 2]! > 4) return this.fail(BAD_RECORD_VERSION);
    if (pos + 4 >= end) return this.fail(MORE);
    const length = (buf[pos + 3]! << 8) | buf[pos + 4]!;
    if (length === 0 || length > MAX_FRAGMENT) return this.fail(BAD_RECORD_LENGTH);
    this.pos = pos + RECORD_HEADER;
    this.left = length;
    return true;
  }

  private fail(why: InspectResult): false {
    this.failure = why;
    return false;
  }

  /** The next handshake byte, or -1 (see `failure`). */
  u8(): number {
    if (this.left === 0 && !this.nextRecord()) return -1;
    if (this.pos >= this.end) {
      this.failure = MORE;
      return -1;
    }
    this.left--;
    return this.buf[this.pos++]!;
  }

  u16(): number {
    const hi = this.u8();
    if (hi < 0) return -1;
    const lo = this.u8();
    return lo < 0 ? -1 : (hi << 8) | lo;
  }

  /** Step over `n` handshake bytes; false (see `failure`) if they are not all here. */
  skip(n: number): boolean {
    while (n > 0) {
      if (this.left === 0 && !this.nextRecord()) return false;
      const here = Math.min(n, this.left, this.end - this.pos);
      if (here === 0) return this.fail(MORE);
      this.pos += here;
      this.left -= here;
      n -= here;
    }
    return true;
  }
}

const cursor = new HandshakeCursor();

/** Host name bytes a DNS name (or an underscore label) may hold; upper case is folded. */
function isHostByte(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || (b >= 0x41 && b <= 0x5a);
}

/** Where the host name lies: its first byte, and the fragment bytes left in that record there. */
let nameStart = 0;
let nameLeftInRecord = 0;
let nameLength = 0;

export function readSni(buf: Buffer, end: number, limit?: number): InspectResult {
  const bound = clampEnd(buf, end);
  const max = clampLimit(limit);
  return atLimit(walkClientHello(buf, bound, max), bound, max);
}

function walkClientHello(buf: Buffer, end: number, limit: number): InspectResult {
  const c = cursor;
  c.reset(buf, end);
  const type = c.u8();
  if (type < 0) return c.failure;
  if (type !== HANDSHAKE_CLIENT_HELLO) return NOT_CLIENT_HELLO;
  const hi = c.u8();
  if (hi < 0) return c.failure;
  const mid = c.u16();
  if (mid < 0) return c.failure;
  const length = (hi << 16) | mid;
  // One record header at least goes with the message: if even that does not fit, stop now.
  if (length < MIN_CLIENT_HELLO || RECORD_HEADER + HANDSHAKE_HEADER + length > limit) return BAD_HELLO_LENGTH;
  let rest = length; // message bytes not yet read

  const major = c.u8();
  if (major < 0) return c.failure;
  if (major !== 3) return BAD_HELLO_VERSION;
  if (!c.skip(1 + 32)) return c.failure; // minor version, random
  rest -= 34;

  const sessionId = c.u8();
  if (sessionId < 0) return c.failure;
  rest -= 1;
  if (sessionId > MAX_SESSION_ID || sessionId > rest) return BAD_SESSION_ID;
  if (!c.skip(sessionId)) return c.failure;
  rest -= sessionId;

  if (rest < 2) return BAD_CIPHER_SUITES;
  const suites = c.u16();
  if (suites < 0) return c.failure;
  rest -= 2;
  if (suites === 0 || suites % 2 !== 0 || suites > rest) return BAD_CIPHER_SUITES;
  if (!c.skip(suites)) return c.failure;
  rest -= suites;

  if (rest < 1) return BAD_COMPRESSION;
  const compression = c.u8();
  if (compression < 0) return c.failure;
  rest -= 1;
  if (compression === 0 || compression > rest) return BAD_COMPRESSION;
  if (!c.skip(compression)) return c.failure;
  rest -= compression;

  if (rest === 0) return NO_EXTENSIONS;
  if (rest < 2) return BAD_EXTENSIONS;
  const extensions = c.u16();
  if (extensions < 0) return c.failure;
  rest -= 2;
  if (extensions !== rest) return BAD_EXTENSIONS;

  let found = false;
  while (rest > 0) {
    if (rest < 4) return BAD_EXTENSION;
    const extType = c.u16();
    if (extType < 0) return c.failure;
    const extLength = c.u16();
    if (extLength < 0) return c.failure;
    rest -= 4;
    if (extLength > rest) return BAD_EXTENSION;
    if (extType === EXT_SERVER_NAME) {
      if (found) return TWO_SERVER_NAMES;
      const why = readServerName(extLength);
      if (why !== null) return why;
      found = true;
    } else if (!c.skip(extLength)) {
      return c.failure;
    }
    rest -= extLength;
  }
  return found ? key(hostName(buf)) : NO_SERVER_NAME;
}

/**
 * The server_name extension's body: like OpenSSL, exactly one entry, of type host_name,
 * filling the list, which fills the extension. Records where the name lies; null if valid.
 */
function readServerName(extLength: number): InspectResult | null {
  const c = cursor;
  if (extLength < 2 + 3 + 1) return BAD_SERVER_NAME;
  const list = c.u16();
  if (list < 0) return c.failure;
  if (list !== extLength - 2) return BAD_SERVER_NAME;
  const nameType = c.u8();
  if (nameType < 0) return c.failure;
  if (nameType !== NAME_TYPE_HOST) return BAD_SERVER_NAME;
  const length = c.u16();
  if (length < 0) return c.failure;
  if (length !== list - 3) return BAD_SERVER_NAME;
  if (length > MAX_HOST_NAME) return BAD_HOST_NAME;
  // Where the name starts: if this record is used up, it starts after the next header.
  const b0 = c.u8();
  if (b0 < 0) return c.failure;
  nameStart = c.pos - 1;
  nameLeftInRecord = c.left + 1;
  nameLength = length;
  if (!isHostByte(b0)) return BAD_HOST_NAME;
  for (let i = 1; i < length; i++) {
    const b = c.u8();
    if (b < 0) return c.failure;
    if (!isHostByte(b)) return BAD_HOST_NAME;
  }
  return null;
}

/** The validated host name, lower-cased, gathered across record headers when split. */
function hostName(buf: Buffer): string {
  let name: string;
  if (nameLength <= nameLeftInRecord) {
    name = buf.toString('latin1', nameStart, nameStart + nameLength);
  } else {
    name = buf.toString('latin1', nameStart, nameStart + nameLeftInRecord);
    let pos = nameStart + nameLeftInRecord;
    let rest = nameLength - nameLeftInRecord;
    while (rest > 0) {
      // The walk already checked these headers: skip one, take what its record holds.
      const fragment = (buf[pos + 3]! << 8) | buf[pos + 4]!;
      const take = Math.min(rest, fragment);
      name += buf.toString('latin1', pos + RECORD_HEADER, pos + RECORD_HEADER + take);
      pos += RECORD_HEADER + take;
      rest -= take;
    }
  }
  return hasUpperCase(name) ? name.toLowerCase() : name;
}

function hasUpperCase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name.charCodeAt(i);
    if (ch >= 0x41 && ch <= 0x5a) return true;
  }
  return false;
}
