/**
 * Character classes for the HTTP/1 parsers, as 256-entry tables indexed by byte
 * (a table load is cheaper than a chain of comparisons on the hot path).
 */

function table(accepts: (byte: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = accepts(b) ? 1 : 0;
  return t;
}

const isAlpha = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;

/** RFC 9110 5.6.2 tchar: the characters of a token (method, field name, coding, chunk-ext name). */
export const TCHAR = table((b) => isAlpha(b) || isDigit(b) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b)));

/** RFC 9110 5.5 field-value characters: VCHAR, obs-text, SP and HTAB (no other controls, no DEL). */
export const FIELD_VALUE = table((b) => b === 0x09 || (b >= 0x20 && b <= 0x7e) || b >= 0x80);

/** Request-target characters: visible ASCII (what llhttp takes; the form is checked once the line is read). */
export const TARGET = table((b) => b >= 0x21 && b <= 0x7e);

/** Characters of the host[:port] in authority-form and absolute-form targets (reg-name, IPv4, IPv6 literal, port). */
export const AUTHORITY = table((b) => isAlpha(b) || isDigit(b) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x3a || b === 0x5b || b === 0x5d);

/** Scheme characters: ALPHA only (RFC 3986 allows digits, '+', '-', '.' after the first; llhttp does not). */
export const SCHEME = table(isAlpha);

/** qdtext of RFC 9110 5.6.4 (quoted-string content other than a quoted-pair). */
export const QDTEXT = table((b) => b === 0x09 || b === 0x20 || b === 0x21 || (b >= 0x23 && b <= 0x5b) || (b >= 0x5d && b <= 0x7e) || b >= 0x80);

/** Hex digit values, -1 for anything else. */
export const HEX_VALUE = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let b = 0; b < 256; b++) {
    if (isDigit(b)) t[b] = b - 0x30;
    else if (b >= 0x41 && b <= 0x46) t[b] = b - 0x41 + 10;
    else if (b >= 0x61 && b <= 0x66) t[b] = b - 0x61 + 10;
  }
  return t;
})();

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HTAB = 0x09;
export const COLON = 0x3a;
export const COMMA = 0x2c;
export const SEMICOLON = 0x3b;
export const EQUALS = 0x3d;
export const DQUOTE = 0x22;
export const BACKSLASH = 0x5c;
