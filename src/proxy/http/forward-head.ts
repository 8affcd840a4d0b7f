import type { HeadParser } from './h1/head-parser.js';

/**
 * The heads the relay writes on: as received, less what belongs to one hop (RFC 9110
 * 7.6.1: Connection, the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
 * Upgrade), plus the lines the relay owns. Most heads need no change and go out as
 * the bytes that came in; the others are copied once, line by line.
 */

/** Lines the relay adds to a head (each ending in CRLF), or '' for none. */
export const CONNECTION_CLOSE = 'Connection: close\r\n';
export const CONNECTION_KEEP_ALIVE = 'Connection: keep-alive\r\n';
export const CONNECTION_UPGRADE = 'Connection: Upgrade\r\n';

const DROP_ALWAYS = 1;
const DROP_UNLESS_UPGRADE = 2;
const CONNECTION = 3;

/** What a field name means to a proxy: 0 end to end, else one of the kinds above. */
function hopKind(head: Buffer, start: number, end: number): number {
  switch (end - start) {
    case 2:
      return matches(head, start, 'te') ? DROP_ALWAYS : 0;
    case 7:
      if (matches(head, start, 'upgrade')) return DROP_UNLESS_UPGRADE;
      return matches(head, start, 'trailer') ? DROP_ALWAYS : 0;
    case 10:
      if (matches(head, start, 'connection')) return CONNECTION;
      return matches(head, start, 'keep-alive') ? DROP_ALWAYS : 0;
    case 16:
      return matches(head, start, 'proxy-connection') ? DROP_ALWAYS : 0;
    default:
      return 0;
  }
}

/** ASCII case-insensitive comparison of head[start..] with a lower-case name. */
function matches(head: Buffer, start: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = head[start + i]!;
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The head to forward for the one `parser` has just read, whose bytes as received are
 * `received`. `keepUpgrade`: an upgrade request, whose Upgrade field stays (its
 * Connection line is then one the caller adds). `add`: lines to append. Returns
 * `received` itself when nothing changes.
 */
export function forwardHead(parser: HeadParser, received: Buffer, keepUpgrade: boolean, add: string): Buffer {
  const head = parser.bytes;
  const fields = parser.fieldOffsets;
  const count = parser.headerCount;
  let drops: Uint8Array | null = null;
  let named: Set<string> | null = null;
  for (let k = 0; k < count; k++) {
    const kind = hopKind(head, fields[4 * k]!, fields[4 * k + 1]!);
    if (kind === 0 || (kind === DROP_UNLESS_UPGRADE && keepUpgrade)) continue;
    (drops ??= new Uint8Array(count))[k] = 1;
    if (kind === CONNECTION) named = connectionTokens(parser.headerValue(k), named);
  }
  if (named !== null) {
    // Fields the Connection header names are this hop's too.
    for (let k = 0; k < count; k++) {
      if (drops![k] === 0 && named.has(parser.headerName(k).toLowerCase())) drops![k] = 1;
    }
  }
  if (drops === null && add === '') return received;
  // Field line k runs from its name to the next line's name (the last one to the final CRLF).
  const end = head.length - 2;
  const out = Buffer.allocUnsafe(head.length + add.length);
  let at = head.copy(out, 0, 0, count > 0 ? fields[0]! : end);
  for (let k = 0; k < count; k++) {
    if (drops !== null && drops[k] === 1) continue;
    at += head.copy(out, at, fields[4 * k]!, k + 1 < count ? fields[4 * (k + 1)]! : end);
  }
  if (add !== '') at += out.write(add, at, 'latin1');
  out[at++] = 0x0d;
  out[at++] = 0x0a;
  return out.subarray(0, at);
}

/** The lower-cased field names a Connection value lists (close and keep-alive are options, not names). */
function connectionTokens(value: string, into: Set<string> | null): Set<string> | null {
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive' || t === 'upgrade') continue;
    (into ??= new Set()).add(t);
  }
  return into;
}
