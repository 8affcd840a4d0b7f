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
