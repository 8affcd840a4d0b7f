import { MORE, atLimit, clampEnd, clampLimit, key, none, type InspectResult } from './types.js';

/**
 * `rdp-cookie`: NAME from `Cookie: mstshash=NAME\r\n` in the X.224 Connection Request
 * an RDP client sends first (MS-RDPBCGR 2.2.1.1): TPKT header, X.224 CR TPDU, the
 * cookie, then optionally an RDP Negotiation Request and a Correlation Info. The
 * whole TPKT must be here and well formed before a key is given.
 */

const TPKT_VERSION = 3;
const TPKT_HEADER = 4;
const X224_CR_FIXED = 7; // LI, CR code, DST-REF(2), SRC-REF(2), class
const X224_CONNECTION_REQUEST = 0xe0; // CR with CDT 0, as RDP clients send it
/** LI is one byte and 255 is reserved, so a CR TPKT is at most 4 + 1 + 254 bytes. */
const MAX_TPKT = TPKT_HEADER + 1 + 254;
const COOKIE_PREFIX = Buffer.from('Cookie: mstshash=', 'latin1');
const CR = 0x0d;
const LF = 0x0a;
const NEG_REQ = 0x01;
const NEG_REQ_LENGTH = 8;
const CORRELATION_INFO = 0x06;
const CORRELATION_INFO_LENGTH = 36;

const NOT_TPKT = none('rdp: not a TPKT version 3 header');
const BAD_TPKT_LENGTH = none('rdp: TPKT length too short for a CR or over 259 bytes / the inspect limit');
const BAD_LENGTH_INDICATOR = none('rdp: X.224 length indicator does not match the TPKT length');
const NOT_CONNECTION_REQUEST = none('rdp: not an X.224 Connection Request');
const NO_COOKIE = none('rdp: no mstshash cookie');
const BAD_COOKIE = none('rdp: mstshash cookie is empty, unterminated or not printable ASCII');
const BAD_TAIL = none('rdp: bytes after the cookie are not a negotiation request (+ correlation info)');

export function readRdpCookie(buf: Buffer, end: number, limit?: number): InspectResult {
  const bound = clampEnd(buf, end);
  const max = clampLimit(limit);
  return atLimit(walkConnectionRequest(buf, bound, max), bound, max);
}

function walkConnectionRequest(buf: Buffer, end: number, limit: number): InspectResult {
  // Byte by byte, so a client speaking something else is told `none` at once.
  if (end < 1) return MORE;
  if (buf[0] !== TPKT_VERSION) return NOT_TPKT;
  if (end < 2) return MORE;
  if (buf[1] !== 0) return NOT_TPKT;
  if (end < 4) return MORE;
  const length = buf.readUInt16BE(2);
  if (length < TPKT_HEADER + X224_CR_FIXED || length > MAX_TPKT || length > limit) return BAD_TPKT_LENGTH;
  if (end < 5) return MORE;
  if (buf[4] !== length - TPKT_HEADER - 1) return BAD_LENGTH_INDICATOR;
  if (end < 6) return MORE;
  if (buf[5] !== X224_CONNECTION_REQUEST) return NOT_CONNECTION_REQUEST;
  if (end < length) return MORE;

  let pos = TPKT_HEADER + X224_CR_FIXED;
  if (length - pos < COOKIE_PREFIX.length) return NO_COOKIE;
  for (let i = 0; i < COOKIE_PREFIX.length; i++) if (buf[pos + i] !== COOKIE_PREFIX[i]) return NO_COOKIE;
  pos += COOKIE_PREFIX.length;
  const nameStart = pos;
  while (pos < length && buf[pos]! >= 0x20 && buf[pos]! <= 0x7e) pos++;
  const nameEnd = pos;
  if (nameEnd === nameStart || pos + 1 >= length || buf[pos] !== CR || buf[pos + 1] !== LF) return BAD_COOKIE;
  pos += 2;
  if (!isNegotiationTail(buf, pos, length)) return BAD_TAIL;
  return key(buf.toString('latin1', nameStart, nameEnd));
}

/** Nothing, an RDP_NEG_REQ, or an RDP_NEG_REQ then an RDP_NEG_CORRELATION_INFO. */
function isNegotiationTail(buf: Buffer, pos: number, end: number): boolean {
  if (pos === end) return true;
  if (end - pos < NEG_REQ_LENGTH || buf[pos] !== NEG_REQ || buf.readUInt16LE(pos + 2) !== NEG_REQ_LENGTH) return false;
  pos += NEG_REQ_LENGTH;
  if (pos === end) return true;
  return end - pos === CORRELATION_INFO_LENGTH && buf[pos] === CORRELATION_INFO && buf.readUInt16LE(pos + 2) === CORRELATION_INFO_LENGTH;
}
