import { COMMA, HTAB, SP, TCHAR } from './chars.js';

/**
 * Readers of the field values that decide framing and connection handling. They
 * read the parser's head buffer between offsets and allocate nothing.
 *
 * Names and tokens are compared with `byte | 0x20` against lowercase constants. That
 * folds more than letters, but the bytes compared are already known to be tchar or
 * field-value characters, where the only other collision ('^' to '~') cannot match
 * the constants, which hold only letters, digits and '-'.
 */

export const ascii = (text: string): Uint8Array => Uint8Array.from(text, (ch) => ch.charCodeAt(0));

/** Whether bytes [start, end) equal `lower` ignoring ASCII case. */
export function equalsIgnoringCase(bytes: Uint8Array, start: number, end: number, lower: Uint8Array): boolean {
  if (end - start !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    if ((bytes[start + k]! | 0x20) !== lower[k]) return false;
  }
  return true;
}

/** A Content-Length value: plain decimal digits, at most 2^53 - 1; -1 for anything else (empty, sign, list, overflow). */
export function parseContentLength(bytes: Uint8Array, start: number, end: number): number {
  if (start === end) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = bytes[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
    if (n > Number.MAX_SAFE_INTEGER) return -1;
  }
  return n;
}

/** Connection option bits. */
export const Connection = {
  Close: 1,
  KeepAlive: 2,
  Upgrade: 4,
  /** Some other option was named (a hop-by-hop field the relay must drop). */
  Other: 8,
} as const;

const CLOSE = ascii('close');
const KEEP_ALIVE = ascii('keep-alive');
const UPGRADE = ascii('upgrade');
const CHUNKED = ascii('chunked');

/**
 * Walk a comma-separated token list (RFC 9110 5.6.1: empty elements allowed, OWS
 * around commas). `visit` sees each non-empty token; returns false if the value is
 * not such a list. Elements are reported by offsets to keep this allocation-free.
 */
function scanTokenList(bytes: Uint8Array, start: number, end: number, visit: (bytes: Uint8Array, start: number, end: number) => void): boolean {
  let i = start;
  while (i < end) {
    let c = bytes[i]!;
    if (c === SP || c === HTAB || c === COMMA) {
      i++;
      continue;
    }
    if (TCHAR[c] !== 1) return false;
    const tokenStart = i;
    while (i < end && TCHAR[bytes[i]!] === 1) i++;
    visit(bytes, tokenStart, i);
    // After a token: OWS, then a comma or the end.
    while (i < end && ((c = bytes[i]!) === SP || c === HTAB)) i++;
    if (i < end && bytes[i] !== COMMA) return false;
  }
  return true;
}

let connectionBits = 0;
const visitConnection = (bytes: Uint8Array, start: number, end: number): void => {
  if (equalsIgnoringCase(bytes, start, end, CLOSE)) connectionBits |= Connection.Close;
  else if (equalsIgnoringCase(bytes, start, end, KEEP_ALIVE)) connectionBits |= Connection.KeepAlive;
  else if (equalsIgnoringCase(bytes, start, end, UPGRADE)) connectionBits |= Connection.Upgrade;
  else connectionBits |= Connection.Other;
};

/** The Connection options named in a value (bits of `Connection`), or -1 if it is not a token list. */
export function connectionOptions(bytes: Uint8Array, start: number, end: number): number {
  connectionBits = 0;
  return scanTokenList(bytes, start, end, visitConnection) ? connectionBits : -1;
}

/** Transfer-Encoding verdicts for one field line. */
export const Coding = {
  /** Not a token list, no coding at all (empty, or commas only), or `chunked` before the last coding. */
  Invalid: -1,
  /** A valid list whose last element is not `chunked` (empty elements count: `chunked,` ends with one). */
  LastNotChunked: 0,
  LastIsChunked: 1,
} as const;
export type CodingVerdict = (typeof Coding)[keyof typeof Coding];

/**
 * One Transfer-Encoding line. Codings with parameters (`gzip;q=1`) are refused:
 * nothing sends them and a relay has no use for them. A trailing empty element
 * counts as the last coding, as llhttp reads it. A line naming no coding is refused:
 * llhttp versions differ on it (Node 20's ignores an empty line, Node 22's and 24's
 * refuse it), and framing must never be read where an upstream's parser might not.
 */
export function transferCodings(bytes: Uint8Array, start: number, end: number): CodingVerdict {
  let chunkedSeen = false;
  let lastIsChunked = false;
  let named = false;
  let i = start;
  while (i < end) {
    let c = bytes[i]!;
    if (c === SP || c === HTAB) {
      i++;
      continue;
    }
    if (c === COMMA) {
      lastIsChunked = false;
      i++;
      continue;
    }
    if (TCHAR[c] !== 1) return Coding.Invalid;
    const tokenStart = i;
    while (i < end && TCHAR[bytes[i]!] === 1) i++;
    if (chunkedSeen) return Coding.Invalid;
    named = true;
    lastIsChunked = chunkedSeen = equalsIgnoringCase(bytes, tokenStart, i, CHUNKED);
    while (i < end && ((c = bytes[i]!) === SP || c === HTAB)) i++;
    if (i < end && bytes[i] !== COMMA) return Coding.Invalid;
  }
  if (!named) return Coding.Invalid;
  return lastIsChunked ? Coding.LastIsChunked : Coding.LastNotChunked;
}
