/**
 * A grammar-based generator of valid HTTP/1 messages for the differential fuzz of
 * tether's parsers (test/unit/proxy/http/h1-differential.test.ts): request and
 * response heads of many shapes (framing fields, Connection, Upgrade, Host, Expect,
 * values with obs-text and OWS), their bodies, and pipelines of them. Every draw
 * comes from the `random` given, so a case is rebuilt from its seed alone.
 */

type Random = () => number;

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ALNUM = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const PATH_CHARS = ALNUM + "-._~!$&'()*+,;=:@/%";
const TARGET_ODD = '"<>\\^`{|}[]#';

const int = (random: Random, n: number): number => Math.floor(random() * n);
const pick = <T>(random: Random, list: readonly T[]): T => list[int(random, list.length)]!;
const text = (random: Random, alphabet: string, min: number, max: number): string => {
  let s = '';
  const n = min + int(random, max - min + 1);
  for (let k = 0; k < n; k++) s += alphabet[int(random, alphabet.length)];
  return s;
};
const ows = (random: Random): string => pick(random, ['', '', '', ' ', '  ', '\t', ' \t']);

/** A field value: visible ASCII, inner SP/HTAB, sometimes obs-text, sometimes empty. */
function fieldValue(random: Random): string {
  const r = random();
  if (r < 0.05) return '';
  let s = '';
  const n = 1 + int(random, 40);
  for (let k = 0; k < n; k++) {
    const q = random();
    if (q < 0.8) s += String.fromCharCode(0x21 + int(random, 94));
    else if (q < 0.9) s += pick(random, [' ', '\t']);
    else s += String.fromCharCode(0x80 + int(random, 128));
  }
  return s.replace(/^[ \t]+|[ \t]+$/g, '') || 'v';
}

const caseVariant = (random: Random, name: string): string => {
  const r = random();
  if (r < 0.5) return name;
  if (r < 0.7) return name.toLowerCase();
  if (r < 0.8) return name.toUpperCase();
  return [...name].map((ch) => (random() < 0.5 ? ch.toUpperCase() : ch.toLowerCase())).join('');
};

interface Framing {
  length: number | null;
  chunked: boolean;
}

/** Field lines other than framing, shared by requests and responses. */
function commonFields(random: Random, lines: string[], version: 0 | 1, request: boolean): void {
  const n = int(random, 10);
  for (let k = 0; k < n; k++) {
    const shape = int(random, 12);
    let line: string;
    switch (shape) {
      case 0:
        line = `${caseVariant(random, 'User-Agent')}:${ows(random) || ' '}Mozilla/5.0 (X11; Linux x86_64) fuzz/${int(random, 100)}`;
        break;
      case 1:
        line = `Accept: ${pick(random, ['*/*', 'text/html,application/xhtml+xml;q=0.9', 'application/json'])}`;
        break;
      case 2:
        line = `Cookie: sid=${text(random, ALNUM, 1, 20)}; theme=${text(random, ALNUM, 0, 8)}`;
        break;
      case 3: {
        const options = ['close', 'keep-alive', 'Keep-Alive', 'upgrade', 'Upgrade', 'TE', 'x-hop', 'CLOSE'];
        const m = 1 + int(random, 3);
        const chosen = Array.from({ length: m }, () => pick(random, options));
        line = `${caseVariant(random, 'Connection')}:${ows(random)}${chosen.join(pick(random, [',', ', ', ' , ', ',\t']))}${ows(random)}`;
        break;
      }
      case 4:
        line = `${caseVariant(random, 'Upgrade')}: ${pick(random, ['websocket', 'h2c', 'foo/1, bar', ''])}`;
        break;
      case 5:
        line = request ? `${caseVariant(random, 'Expect')}: ${pick(random, ['100-continue', '100-Continue', 'x'])}` : `Server: fuzz`;
        break;
      case 6:
        line = request && random() < 0.3 ? `Host: ${text(random, ALNUM, 1, 10)}` : `Date: Tue, 15 Nov 1994 08:12:31 GMT`;
        break;
      case 7:
        line = `${text(random, TCHARS, 1, 16)}:${ows(random)}${fieldValue(random)}${ows(random)}`;
        break;
      case 8:
        line = `X-Empty:${ows(random)}`;
        break;
      case 9:
        line = `Accept-Language: en-US,en;q=0.${int(random, 10)}`;
        break;
      case 10:
        line = `X-Forwarded-For: 10.${int(random, 256)}.${int(random, 256)}.${int(random, 256)}`;
        break;
      default:
        line = `Cache-Control: ${pick(random, ['no-cache', 'max-age=0', 'private, no-store'])}`;
    }
    lines.push(line);
  }
  void version;
}

/** Content-Length or chunked (or neither), as fields. */
function framingFields(random: Random, lines: string[], version: 0 | 1): Framing {
  const r = random();
  if (r < 0.35) {
    const length = random() < 0.2 ? 0 : int(random, 40);
    lines.splice(int(random, lines.length + 1), 0, `${caseVariant(random, 'Content-Length')}:${ows(random) || ' '}${random() < 0.1 ? '00' : ''}${length}${ows(random)}`);
    return { length, chunked: false };
  }
  if (r < 0.6 && version === 1) {
    const codings = pick(random, ['chunked', 'Chunked', 'gzip, chunked', 'gzip,chunked', 'deflate , chunked', ', chunked']);
    if (random() < 0.15) {
      lines.splice(int(random, lines.length + 1), 0, 'Transfer-Encoding: gzip');
      lines.push(`Transfer-Encoding: ${codings}`);
    } else {
      lines.splice(int(random, lines.length + 1), 0, `${caseVariant(random, 'Transfer-Encoding')}:${ows(random) || ' '}${codings}${ows(random)}`);
    }
    return { length: null, chunked: true };
  }
  return { length: null, chunked: false };
}

/** A chunked body: chunks with extensions sometimes, then a last chunk and trailers sometimes. */
export function chunkedBody(random: Random): string {
  let body = '';
  const n = int(random, 4);
  for (let k = 0; k < n; k++) {
    const size = 1 + int(random, 20);
    const hex = size.toString(16);
    const sizeText = random() < 0.3 ? hex.toUpperCase() : random() < 0.1 ? `00${hex}` : hex;
    body += `${sizeText}${chunkExtension(random)}\r\n${text(random, ALNUM + '\r\n', size, size)}\r\n`;
  }
  body += `0${chunkExtension(random)}\r\n`;
  if (random() < 0.2) body += `X-Trailer: ${fieldValue(random)}\r\n`;
  return body + '\r\n';
}

function chunkExtension(random: Random): string {
  if (random() < 0.75) return '';
  let ext = '';
  const n = 1 + int(random, 2);
  for (let k = 0; k < n; k++) {
    const name = text(random, TCHARS, 1, 6);
    const r = random();
    if (r < 0.3) ext += `;${name}`;
    else if (r < 0.7) ext += `;${name}=${text(random, TCHARS, 1, 6)}`;
    else ext += `;${name}="${text(random, ALNUM + ' \\"', 0, 8).replace(/\\$/, '').replace(/(?<!\\)"/g, '\\"')}"`;
  }
  return ext;
}

function body(random: Random, framing: Framing): string {
  if (framing.chunked) return chunkedBody(random);
  if (framing.length !== null) return text(random, ALNUM + '\r\n', framing.length, framing.length);
  return '';
}

function target(random: Random, method: string): string {
  if (method === 'CONNECT') return `${pick(random, ['example.com', 'a.b-c.test', '10.0.0.1', '[::1]'])}:${pick(random, ['443', '80', '8443'])}`;
  const r = random();
  if (r < 0.05 && method === 'OPTIONS') return '*';
  if (r < 0.12) return `${pick(random, ['http', 'https', 'HTTP'])}://${pick(random, ['example.com', 'h:8080', '127.0.0.1'])}${pick(random, ['', '/', '/a/b?x=1', '?q'])}`;
  let path = '/' + text(random, PATH_CHARS, 0, 30);
  if (random() < 0.5) path += `?${text(random, ALNUM + '=&%+', 0, 30)}`;
  if (random() < 0.05) path += text(random, TARGET_ODD, 1, 2);
  return path;
}

const COMMON_METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT'];
const RARE_METHODS = ['TRACE', 'PROPFIND', 'M-SEARCH', 'MKCALENDAR', 'UNSUBSCRIBE', 'QUERY', 'PURGE', 'LINK'];

/** One request: head and body. */
export function generateRequest(random: Random): string {
  const method = random() < 0.9 ? pick(random, COMMON_METHODS) : pick(random, RARE_METHODS);
  const version: 0 | 1 = random() < 0.85 ? 1 : 0;
  const lines: string[] = [];
  if (random() < 0.9) lines.push(`${caseVariant(random, 'Host')}: ${pick(random, ['example.com', 't', 'h:8080', '[::1]:80'])}`);
  commonFields(random, lines, version, true);
  const framing = method === 'CONNECT' ? { length: null, chunked: false } : framingFields(random, lines, version);
  const lead = random() < 0.05 ? '\r\n' : '';
  return `${lead}${method} ${target(random, method)} HTTP/1.${version}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n${body(random, framing)}`;
}

const STATUSES = [200, 200, 200, 201, 204, 206, 301, 302, 304, 400, 404, 500, 503, 100, 101, 103, 199, 299, 999];

/** One response: head and body (a body for every status; what a no-body status does with it is the test). */
export function generateResponse(random: Random): string {
  const status = pick(random, STATUSES);
  const version: 0 | 1 = random() < 0.85 ? 1 : 0;
  const reason = pick(random, ['OK', 'Not Found', '', 'Some \t reason \x80\xff', 'x']);
  const lines: string[] = [];
  commonFields(random, lines, version, false);
  const framing = framingFields(random, lines, version);
  const statusLine = reason === '' && random() < 0.5 ? `HTTP/1.${version} ${status}` : `HTTP/1.${version} ${status} ${reason}`;
  return `${statusLine}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n${body(random, framing)}`;
}

/** One to three messages back to back. */
export function generatePipeline(random: Random, one: (random: Random) => string): string {
  let out = one(random);
  const more = random() < 0.7 ? 0 : 1 + int(random, 2);
  for (let k = 0; k < more; k++) out += one(random);
  return out;
}

/** Tokens for mutations of HTTP/1 messages: smuggling tricks beyond HTTP_DICTIONARY's. */
export const H1_DICTIONARY: readonly Buffer[] = [
  'HTTP/1.1 200 OK\r\n', 'HTTP/1.0 ', ' 099 ', ' 101 ', ' 204 ', ' 304 ', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.10', ';a=b', ';a="b"', ';', '=', '"',
  'Connection: keep-alive, close\r\n', 'Transfer-Encoding: chunked, identity\r\n', 'Transfer-Encoding: xchunked\r\n', 'Transfer-Encoding: gzip;q=1, chunked\r\n',
  'Content-Length: 1\r\nContent-Length: 1\r\n', 'Host: a\r\nHost: b\r\n', '\r\n\tfolded', 'Upgrade: websocket\r\nConnection: Upgrade\r\n', '*', 'OPTIONS ',
  'http://', 'h@x', '[::1]', ':443', 'fffffffffffff', '0000000000000000000001', 'X-T: v\r\n', ' :', 'CHUNKED', 'Keep-Alive',
].map((t) => Buffer.from(t, 'latin1'));
