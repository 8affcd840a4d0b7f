import { ascii } from './field-values.js';

/**
 * The methods tether forwards: those llhttp (node:http) accepts in HTTP/1 requests.
 * Any other token is refused, as node:http refuses it.
 */
export const KNOWN_METHODS = [
  'DELETE', 'GET', 'HEAD', 'POST', 'PUT', 'CONNECT', 'OPTIONS', 'TRACE', 'COPY', 'LOCK', 'MKCOL', 'MOVE', 'PROPFIND', 'PROPPATCH',
  'SEARCH', 'UNLOCK', 'BIND', 'REBIND', 'UNBIND', 'ACL', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY',
  'SUBSCRIBE', 'UNSUBSCRIBE', 'PATCH', 'PURGE', 'MKCALENDAR', 'LINK', 'UNLINK', 'SOURCE', 'QUERY',
] as const;
export type KnownMethod = (typeof KNOWN_METHODS)[number];

export const METHOD_GET = KNOWN_METHODS.indexOf('GET');
export const METHOD_HEAD = KNOWN_METHODS.indexOf('HEAD');
export const METHOD_CONNECT = KNOWN_METHODS.indexOf('CONNECT');
export const METHOD_OPTIONS = KNOWN_METHODS.indexOf('OPTIONS');

const ENCODED = KNOWN_METHODS.map(ascii);
/** Method indices by length, so a lookup compares a handful of candidates. */
const BY_LENGTH: number[][] = [];
ENCODED.forEach((bytes, index) => (BY_LENGTH[bytes.length] ??= []).push(index));

/** The index in KNOWN_METHODS of bytes [start, end) (case-sensitive, as RFC 9110 9.1 says), or -1. */
export function methodIndex(bytes: Uint8Array, start: number, end: number): number {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return -1;
  outer: for (const index of candidates) {
    const name = ENCODED[index]!;
    for (let k = 0; k < name.length; k++) if (bytes[start + k] !== name[k]) continue outer;
    return index;
  }
  return -1;
}

/** The longest known method. */
export const MAX_METHOD_LENGTH = Math.max(...ENCODED.map((bytes) => bytes.length));

/**
 * Which known methods (bits by index, low and high words) have byte `c` at position
 * `k`: METHOD_MASKS[2 * (k * 256 + c)] and the next. A method read a byte at a time
 * keeps the candidates whose every byte so far matched, so it is refused at the first
 * byte no known method has there, however the reads split it (as llhttp does).
 */
const METHOD_MASKS = new Int32Array(2 * MAX_METHOD_LENGTH * 256);
ENCODED.forEach((bytes, index) => {
  bytes.forEach((c, k) => {
    METHOD_MASKS[2 * (k * 256 + c) + (index >> 5)]! |= 1 << (index & 31);
  });
});

/** All methods, before the first byte. */
export const ALL_METHODS_LO = -1;
export const ALL_METHODS_HI = (1 << (KNOWN_METHODS.length - 32)) - 1;

export function methodMaskLo(k: number, c: number): number {
  return k < MAX_METHOD_LENGTH ? METHOD_MASKS[2 * (k * 256 + c)]! : 0;
}

export function methodMaskHi(k: number, c: number): number {
  return k < MAX_METHOD_LENGTH ? METHOD_MASKS[2 * (k * 256 + c) + 1]! : 0;
}

/** The candidate (by masks) whose length is exactly `length`, or -1. */
export function methodOfLength(lo: number, hi: number, length: number): number {
  for (let index = 0; index < KNOWN_METHODS.length; index++) {
    const bit = index < 32 ? (lo >>> index) & 1 : (hi >>> (index - 32)) & 1;
    if (bit === 1 && ENCODED[index]!.length === length) return index;
  }
  return -1;
}
