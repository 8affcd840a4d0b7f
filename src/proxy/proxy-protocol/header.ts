/**
 * The PROXY protocol (HAProxy, https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt):
 * a header in front of a TCP stream that carries the original client's address.
 * Pure code, no sockets: build.ts writes the header tether sends upstream, parse.ts
 * reads the header a trusted proxy in front of tether sends. This file: the format's
 * constants and the types both share.
 */
export type ProxyVersion = 'v1' | 'v2';
/** Which inbound headers to take: one version, or either (told apart by the first byte). */
export type ProxyAccept = 'v1' | 'v2' | 'any';

export interface Endpoint {
  /** As a socket reports it: dotted IPv4, IPv6, or IPv4-mapped IPv6. */
  readonly address: string;
  readonly port: number;
}

/** The spec's limit for a v1 line, CRLF included. */
export const V1_MAX_BYTES = 107;
/**
 * The largest v2 header accepted (16 fixed bytes + addresses + TLVs). The format
 * allows 16 + 65535, but addresses take at most 216 bytes and real senders' TLVs
 * (AWS, GCP, Azure, HAProxy) a few hundred: a bound keeps a hostile peer from
 * making us wait for 64 KiB of nothing.
 */
export const V2_MAX_BYTES = 4096;

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
export const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

export const V2_VERSION = 0x20;
export const V2_CMD_LOCAL = 0x0;
export const V2_CMD_PROXY = 0x1;
export const V2_FAM_UNSPEC = 0x0;
export const V2_FAM_INET = 0x1;
export const V2_FAM_INET6 = 0x2;
export const V2_FAM_UNIX = 0x3;
export const V2_TRANS_STREAM = 0x1;

export interface ProxyHeader {
  readonly version: 1 | 2;
  /**
   * `proxy`: the endpoints below are the connection's true ones. `local` (v2 LOCAL:
   * the proxy's own connection, e.g. a health check) and `unknown` (v1 UNKNOWN, v2
   * UNSPEC or AF_UNIX): keep the socket's own addresses; the endpoints are empty.
   */
  readonly command: 'proxy' | 'local' | 'unknown';
  /** Dotted IPv4 or compressed IPv6 (an IPv4-mapped one as `::ffff:a.b.c.d`). */
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destAddress: string;
  readonly destPort: number;
}

export type ProxyParseResult =
  | { readonly kind: 'more' }
  /** `rest`: the bytes of the last chunk after the header (client data), maybe empty. */
  | { readonly kind: 'done'; readonly header: ProxyHeader; readonly rest: Buffer }
  | { readonly kind: 'error'; readonly reason: string };

/** The one need-more answer: asking for more costs no allocation. */
export const NEED_MORE: ProxyParseResult = Object.freeze({ kind: 'more' });
