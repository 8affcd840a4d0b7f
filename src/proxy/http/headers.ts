/**
 * Header surgery for http mode: what a proxy must not pass on (RFC 9110 7.6.1) and
 * how an upgrade request is written back out byte for byte.
 */

/** Hop-by-hop fields, plus `expect`: node:http has already answered 100-continue. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'transfer-encoding',
  'expect',
]);

/**
 * `rawHeaders` without hop-by-hop fields and without those the Connection header
 * names. Framing is node:http's job on each side: a chunked body is re-chunked
 * (`chunked` = true adds `Transfer-Encoding: chunked` back, which node:http then
 * honours), a Content-Length body is passed with its length. An upgrade request
 * (`upgrade` = true) keeps its `Upgrade` field and says `Connection: Upgrade`: the
 * upstream decides, and only its 101 turns the connection into a tunnel.
 */
export function forwardHeaders(rawHeaders: readonly string[], chunked: boolean, upgrade = false): string[] {
  let named: Set<string> | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const t = token.trim().toLowerCase();
      if (t !== '' && t !== 'close' && t !== 'keep-alive' && !(upgrade && t === 'upgrade')) (named ??= new Set()).add(t);
    }
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (upgrade && lower === 'upgrade') {
      out.push(name, rawHeaders[i + 1]!);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || (named !== null && named.has(lower))) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  if (chunked) out.push('Transfer-Encoding', 'chunked');
  if (upgrade) out.push('Connection', 'Upgrade');
  return out;
}

/** Whether a message head declares a chunked body. */
export function isChunked(transferEncoding: string | undefined): boolean {
  return transferEncoding !== undefined && /(?:^|,)\s*chunked\s*$/i.test(transferEncoding);
}

/**
 * A response head as the upstream sent it (a 101 before the tunnel starts), every
 * field kept: Connection and Upgrade are the point. latin1 both ways: node:http
 * decoded header bytes as latin1, so this restores them.
 */
export function serializeResponseHead(status: number, message: string, rawHeaders: readonly string[]): Buffer {
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  head += '\r\n';
  return Buffer.from(head, 'latin1');
}

/** Approximate size of a parsed head on the wire (for bytes_total). */
export function headBytes(firstLineLength: number, rawHeaders: readonly string[]): number {
  let n = firstLineLength + 4;
  for (let i = 0; i < rawHeaders.length; i++) n += rawHeaders[i]!.length + 2;
  return n;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** The plain-text body of tether's own error answers. */
export function errorBody(status: number, detail: string): string {
  return `${status} ${REASONS[status] ?? 'Error'}: ${detail}\n`;
}

/** A complete error response that closes the connection, for a raw socket. */
export function errorResponse(status: number, detail: string): Buffer {
  const reason = REASONS[status] ?? 'Error';
  const body = errorBody(status, detail);
  return Buffer.from(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n${body}`,
    'latin1',
  );
}
