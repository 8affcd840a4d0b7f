/**
 * Why an HTTP/1 parser refused its input. Codes are small integers so the state
 * machines return them without allocating; `h1ErrorStatus` gives the status a
 * server answers with and `h1ErrorName` a name for logs and tests.
 */
export const H1Error = {
  None: 0,
  /** The head (or the trailer section) is over its byte limit: 431. */
  HeadTooLarge: 1,
  /** Not a token, or not a method llhttp (node:http) knows. */
  BadMethod: 2,
  /** A character outside the target table, or a form the method does not take. */
  BadTarget: 3,
  /** Anything but HTTP/1.0 or HTTP/1.1 (HTTP/2.0, HTTP/0.9 lines without a version, lowercase). */
  BadVersion: 4,
  /** The start line's separators: a second SP, SP missing. */
  BadStartLine: 5,
  /** Not three digits, or below 100. */
  BadStatus: 6,
  /** A reason phrase with control characters. */
  BadReason: 7,
  BadHeaderName: 8,
  /** SP or HTAB between a field name and its colon (RFC 9112 5.1: must be refused). */
  WhitespaceBeforeColon: 9,
  BadHeaderValue: 10,
  /** A line starting with SP or HTAB: obsolete line folding. */
  ObsFold: 11,
  /** CR not followed by LF. */
  BareCR: 12,
  /** LF not preceded by CR. */
  BareLF: 13,
  /** Not a plain decimal, or over 2^53 - 1. */
  BadContentLength: 14,
  /** Content-Length given twice (even with the same value). */
  DuplicateContentLength: 15,
  ContentLengthWithTransferEncoding: 16,
  /** Not a token list whose last coding is exactly `chunked` (once). */
  BadTransferEncoding: 17,
  TransferEncodingOnHttp10: 18,
  DuplicateHost: 19,
  /** Connection that is not a comma-separated token list. */
  BadConnection: 20,
  BadChunkSize: 21,
  ChunkSizeTooLarge: 22,
  BadChunkExtension: 23,
  /** Chunk data not followed by exactly CRLF. */
  BadChunkDataEnd: 24,
  BadTrailer: 25,
  /** A 1xx response with Content-Length or Transfer-Encoding (RFC 9110 8.6, RFC 9112 6.1: never sent; llhttp reads a body after some). */
  FramingOnInterim: 26,
} as const;

export type H1ErrorCode = (typeof H1Error)[keyof typeof H1Error];

const NAMES: readonly string[] = Object.keys(H1Error);

export function h1ErrorName(code: H1ErrorCode): string {
  return NAMES[code] ?? 'Unknown';
}

/** The status a server answers a refused request with. */
export function h1ErrorStatus(code: H1ErrorCode): 400 | 431 {
  return code === H1Error.HeadTooLarge ? 431 : 400;
}

/** `execute` results other than an offset. */
export const NEED_MORE = -1;
export const FAILED = -2;
