import { AUTHORITY, SCHEME } from './chars.js';

const ASTERISK = 0x2a;
const SLASH = 0x2f;
const QUESTION = 0x3f;
const HASH = 0x23;
const COLON = 0x3a;

const isAlpha = (b: number): boolean => ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x7a);
const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;

/**
 * RFC 9112 3.2.3 authority-form, for CONNECT: host ":" port, the host a reg-name,
 * IPv4 or bracketed IPv6 literal in AUTHORITY characters, the port 1-5 digits.
 */
export function isAuthorityForm(bytes: Uint8Array, start: number, end: number): boolean {
  let colon = -1;
  for (let i = end - 1; i >= start; i--) {
    if (bytes[i] === COLON) {
      colon = i;
      break;
    }
  }
  if (colon <= start || end - colon - 1 < 1 || end - colon - 1 > 5) return false;
  for (let i = colon + 1; i < end; i++) if (!isDigit(bytes[i]!)) return false;
  for (let i = start; i < colon; i++) if (AUTHORITY[bytes[i]!] !== 1) return false;
  return true;
}

/**
 * RFC 9112 3.2.2 absolute-form, narrowed: scheme "://" host[:port] in AUTHORITY
 * characters (no userinfo), then nothing, or a path or query without a fragment.
 * The characters of the whole target are already checked against TARGET.
 */
export function isAbsoluteForm(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  if (i === end || !isAlpha(bytes[i]!)) return false;
  while (i < end && SCHEME[bytes[i]!] === 1) i++;
  if (end - i < 4 || bytes[i] !== COLON || bytes[i + 1] !== SLASH || bytes[i + 2] !== SLASH) return false;
  i += 3;
  const hostStart = i;
  while (i < end && AUTHORITY[bytes[i]!] === 1) i++;
  if (i === hostStart || bytes[hostStart] === COLON) return false;
  if (i === end) return true;
  if (bytes[i] !== SLASH && bytes[i] !== QUESTION) return false;
  for (; i < end; i++) if (bytes[i] === HASH) return false;
  return true;
}

/** Which forms a request target may take: origin-form for all, `*` for OPTIONS, authority-form for CONNECT only. */
export function isValidTarget(bytes: Uint8Array, start: number, end: number, isConnect: boolean, isOptions: boolean): boolean {
  if (isConnect) return isAuthorityForm(bytes, start, end);
  const first = bytes[start];
  if (first === SLASH) return true;
  if (first === ASTERISK) return isOptions && end - start === 1;
  return isAbsoluteForm(bytes, start, end);
}
