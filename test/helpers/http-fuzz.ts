import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { V1ProxyProtocol } from 'proxy-protocol-js';
import { Body, ChunkedFramer, FAILED, h1ErrorStatus, NEED_MORE, RequestHead } from '../../src/proxy/http/h1/index.js';
import { listenLoopback } from './listen.js';

/**
 * The pieces of the HTTP head fuzz (test/integration/http-fuzz.test.ts): what a
 * strict parser makes of a case (node:http itself, fed the bytes directly), an
 * upstream that says which client each request came from, and a reader of the
 * responses a client gets.
 */

/** One request as a server saw it: `request GET /a`, `upgrade GET /ws`, `connect CONNECT t:443`. */
export type SeenLine = string;

/**
 * How the upstream and the reference answer: 204 to a request once its body is in,
 * 426 and a close to an upgrade or CONNECT, each naming the request it answers in
 * `x-request` (URI-encoded), so a client can tell its answers are its own and in order.
 */
const upgradeAnswer = (line: SeenLine): string =>
  `HTTP/1.1 426 Upgrade Required\r\nx-request: ${encodeURIComponent(line)}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`;
/** Values safe to echo into response headers (the fuzzed ones may hold anything). */
const SAFE_VALUE = /^[A-Za-z0-9_-]{1,64}$/;
const QUERY_SID = /[?&]sid=([A-Za-z0-9_-]{1,64})(?:&|$)/;

/**
 * Make `server` answer like the fuzz upstream and report every request, upgrade and
 * CONNECT it sees (at its head, as node:http emits them) to `seen`. Responses teach
 * tether's learn rules something: `set-cookie: sid=` from a `?sid=` query,
 * `x-session` from an `x-key` header.
 */
export function answerLikeUpstream(server: http.Server, name: string, seen: (socket: Duplex, line: SeenLine, req: IncomingMessage) => void): void {
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const line = `request ${req.method!} ${req.url!}`;
    seen(req.socket, line, req);
    req.resume();
    req.on('end', () => {
      const headers: Record<string, string> = { 'x-upstream': name, 'x-request': encodeURIComponent(line) };
      const sid = QUERY_SID.exec(req.url!)?.[1];
      if (sid !== undefined) headers['set-cookie'] = `sid=${sid}; Path=/`;
      const key = req.headers['x-key'];
      if (typeof key === 'string' && SAFE_VALUE.test(key)) headers['x-session'] = key;
      res.writeHead(204, headers);
      res.end();
    });
  });
  const tunnel = (kind: string) => (req: IncomingMessage, socket: Duplex): void => {
    const line = `${kind} ${req.method!} ${req.url!}`;
    seen(req.socket, line, req);
    socket.on('error', () => {});
    socket.end(upgradeAnswer(line));
    // Read and drop what follows, so the peer's FIN is seen and the socket closes.
    socket.resume();
  };
  server.on('upgrade', tunnel('upgrade'));
  server.on('connect', tunnel('connect'));
}

/** What the strict parser made of one case. */
export interface Reference {
  /** Requests, upgrades and CONNECTs emitted, in order. */
  readonly requests: SeenLine[];
  /** `clean`: ended between requests; `incomplete`: ended inside a head or a body; `error`: a parse error (`code`). */
  readonly verdict: 'clean' | 'incomplete' | 'error';
  /** The parse error (node:http's `clientError` code), for `error`. */
  readonly code: string | null;
  /** Final responses node:http and the upstream-like handlers wrote, in order (1xx left out). */
  readonly responses: Answer[];
  /**
   * The first of `requests` that tether refuses though llhttp reads it, and tether's
   * answer: a version other than 1.0 and 1.1 (400), an upgrade request with a body
   * (400), CONNECT (501; 400 with an empty target). null: none.
   */
  readonly refusal: { readonly at: number; readonly status: number } | null;
  /** Requests routed to an upstream, those it refused itself included (tetherModel only). */
  readonly routed?: number;
}

/**
 * What tether's relay (src/proxy/http/connection.ts) makes of a stream, worked out
 * from its parsers (h1/, themselves checked against llhttp in
 * test/unit/proxy/http/) with no sockets: the requests the upstreams see, in order;
 * the answers the client gets, with the fuzz upstream's answers (204 once a body is
 * in, 426 to an upgrade, and node:http's own 417 to an Expect it does not know, with
 * no 'request' seen); and how the stream ends. `refusal` is tether's own answer
 * (400, 431, 501) that ends it; `verdict` is 'error' then.
 */
export function tetherModel(input: Buffer, maxHeadBytes: number): Reference {
  const requests: SeenLine[] = [];
  const responses: Answer[] = [];
  const head = new RequestHead(maxHeadBytes);
  const chunks = new ChunkedFramer({ maxTrailerBytes: maxHeadBytes });
  let routed = 0;
  const done = (verdict: Reference['verdict'], refusal: Reference['refusal'] = null): Reference => ({ requests, verdict, code: null, responses, refusal, routed });
  const refuse = (status: number): Reference => done('error', { at: requests.length, status });
  let at = 0;
  while (at < input.length) {
    head.reset();
    const end = head.execute(input, at, input.length);
    if (end === FAILED) return refuse(h1ErrorStatus(head.error));
    // Only empty lines, or a head cut short.
    if (end === NEED_MORE) return done(head.bytes.length === 0 ? 'clean' : 'incomplete');
    if (head.isConnect) return refuse(501);
    if (head.versionMinor === 1 && !head.hasHost) return refuse(400);
    if (head.upgrade && head.bodyKind !== Body.None) return refuse(400);
    const line = `${head.upgrade ? 'upgrade' : 'request'} ${head.method} ${head.target}`;
    const expect = head.values('expect');
    const expectationFailed = !head.upgrade && expect.length > 0 && !/(?:^|\W)100-continue(?:$|\W)/i.test(expect.join(', '));
    if (!expectationFailed) requests.push(line);
    routed++;
    at = end;
    if (head.bodyKind === Body.Length) {
      if (input.length - at < head.contentLength) return done('incomplete');
      at += head.contentLength;
    } else if (head.bodyKind === Body.Chunked) {
      chunks.reset();
      const bodyEnd = chunks.execute(input, at, input.length);
      // Routed already: the upstream has the head; tether answers the bad chunk.
      if (bodyEnd === FAILED) return done('error', { at: requests.length, status: 400 });
      if (bodyEnd === NEED_MORE) return done('incomplete');
      at = bodyEnd;
    }
    responses.push({ status: expectationFailed ? 417 : head.upgrade ? 426 : 204, request: expectationFailed ? null : line });
    // Bytes after a request that closes the connection are dropped (RFC 9112 9.6).
    if (!head.keepAlive) return done('clean');
  }
  return done('clean');
}

/** What tether answers a request it refuses before routing, or null (src/listener/http.ts). */
function tetherRefuses(kind: string, req: IncomingMessage): number | null {
  if (kind === 'connect') return req.url === '' ? 400 : 501;
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) return 400;
  const length = req.headers['content-length'];
  if (kind === 'upgrade' && (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0'))) return 400;
  return null;
}

/** Whether the client asked to keep the connection (RFC 9112 9.3). */
function keepAliveAsked(req: IncomingMessage): boolean {
  const tokens = (req.headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim());
  if (tokens.includes('close')) return false;
  return req.httpVersionMinor >= 1 || tokens.includes('keep-alive');
}

/** A client connection of the reference server: a Duplex, as node:http documents for 'connection'. */
class ReferenceConnection extends Duplex {
  readonly written: Buffer[] = [];
  readonly requests: SeenLine[] = [];
  refusal: { at: number; status: number } | null = null;
  code: string | null = null;

  /** Record one request, upgrade or CONNECT; false once tether would have refused one. */
  record(kind: string, line: SeenLine, req: IncomingMessage): boolean {
    if (this.refusal === null) {
      const status = tetherRefuses(kind, req);
      if (status !== null) this.refusal = { at: this.requests.length, status };
    }
    this.requests.push(line);
    return this.refusal === null;
  }

  override _read(): void {
    // Data is pushed by the test.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written.push(chunk);
    callback();
  }
}

/** Let node:http finish with what it was given (in-memory streams: a few turns of the loop for each upgrade). */
async function settle(): Promise<void> {
  for (let i = 0; i < 12; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * The strict parser: a node:http server with the options tether's http listener
 * uses, fed each case whole. It answers like the fuzz upstream, so its output is
 * what a client should see when nothing goes wrong.
 */
export class ReferenceParser {
  readonly #server: http.Server;

  constructor(maxHeadBytes: number) {
    const server = http.createServer({ maxHeaderSize: maxHeadBytes, insecureHTTPParser: false, requestTimeout: 0 });
    this.#server = server;
    answerLikeUpstream(server, 'reference', (socket, line, req) => (socket as ReferenceConnection).record('request', line, req));
    // An upgrade is answered as the upstreams answer it (426), and as tether does after
    // an answer other than 101, the connection stays HTTP: parsing goes on from the
    // byte after the upgrade request. CONNECT: tether answers it.
    server.removeAllListeners('upgrade');
    server.removeAllListeners('connect');
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // req.socket, not socket: from Node 26 an upgrade with a body comes as a stream
      // over the connection that yields the body first (tether refuses those).
      const connection = req.socket as unknown as ReferenceConnection;
      const line = `upgrade ${req.method!} ${req.url!}`;
      if (!connection.record('upgrade', line, req)) {
        socket.destroy();
        connection.destroy();
        return;
      }
      // Its answer comes after those of the requests before it (tether waits for them).
      const busy = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
      const answer = (): void => {
        if (socket.destroyed) return;
        socket.write(upgradeAnswer(line));
        if (!keepAliveAsked(req)) {
          socket.end();
          return;
        }
        if (head.length > 0) socket.unshift(head);
        server.emit('connection', socket);
      };
      if (busy === undefined || busy === null) answer();
      else busy.once('finish', () => setImmediate(answer));
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      const connection = req.socket as unknown as ReferenceConnection;
      connection.record('connect', `connect ${req.method!} ${req.url!}`, req);
      socket.destroy();
      connection.destroy();
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Bytes after a request that closes the connection: dropped, as tether drops them,
      // once that request is answered.
      if (err.code === 'HPE_CLOSED_CONNECTION') return;
      (socket as ReferenceConnection).code = err.code ?? 'unknown';
      socket.destroy();
    });
  }

  /** Parse `input`, then end of stream (which tells a clean end from a cut one). */
  async parse(input: Buffer): Promise<Reference> {
    const connection = new ReferenceConnection();
    connection.on('error', () => {});
    this.#server.emit('connection', connection);
    connection.push(input);
    await settle();
    const responses = readResponses(Buffer.concat(connection.written)).responses;
    const errorBeforeEnd = connection.code;
    connection.push(null);
    await settle();
    connection.destroy();
    const code = errorBeforeEnd ?? connection.code;
    // At end of stream llhttp reports a message it was inside of as HPE_INVALID_EOF_STATE.
    const verdict = code === null ? 'clean' : errorBeforeEnd === null && code === 'HPE_INVALID_EOF_STATE' ? 'incomplete' : 'error';
    return { requests: connection.requests, verdict, code, responses, refusal: connection.refusal };
  }
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** One final response as a client reads it: its status and the request it says it answers (`x-request`), if any. */
export interface Answer {
  readonly status: number;
  readonly request: string | null;
}

/** The final responses in a stream of HTTP/1.1 responses (Content-Length, chunked or no body); `partial`: it ends inside one. */
export function readResponses(bytes: Buffer): { responses: Answer[]; partial: boolean } {
  const responses: Answer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at);
    if (end < 0) return { responses, partial: true };
    const lines = bytes.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1] ?? NaN);
    if (Number.isNaN(status)) return { responses, partial: true };
    let length = 0;
    let chunked = false;
    let request: string | null = null;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      if (name === 'transfer-encoding' && /chunked$/i.test(value)) chunked = true;
      if (name === 'x-request') request = safeDecode(value);
    }
    at = end + 4;
    if (status < 200) continue;
    responses.push({ status, request });
    if (status === 204 || status === 304) continue;
    if (chunked) {
      for (;;) {
        const lineEnd = bytes.indexOf('\r\n', at);
        if (lineEnd < 0) return { responses, partial: true };
        const size = parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16);
        at = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      at += length;
    }
  }
  return { responses, partial: at > bytes.length };
}

export interface AttributingUpstream {
  readonly name: string;
  readonly address: string;
  /** Requests seen, by the client address in the PROXY header of their connection (`shared` without PROXY headers). */
  readonly seen: Map<string, SeenLine[]>;
  /** Open connections (from tether). */
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/**
 * An http upstream for the fuzz. With `proxyProtocol` (tether runs with
 * TETHER_PROXY_PROTOCOL=v1) each connection starts with a PROXY line (read with
 * proxy-protocol-js) naming the client tether serves on it, so every request is put
 * down to the client connection it came from; without, tether shares its connections
 * between clients and every request is put down to `shared`. Behind it a plain
 * node:http server (default options) answers like `answerLikeUpstream`.
 */
export async function startAttributingUpstream(name: string, proxyProtocol: boolean): Promise<AttributingUpstream> {
  const seen = new Map<string, SeenLine[]>();
  const clientOf = new WeakMap<object, string>();
  const sockets = new Set<net.Socket>();
  const server = http.createServer();
  answerLikeUpstream(server, name, (socket, line) => {
    const client = clientOf.get(socket) ?? 'unknown';
    let list = seen.get(client);
    if (list === undefined) seen.set(client, (list = []));
    list.push(line);
  });
  server.on('clientError', (_err, socket: Duplex) => socket.destroy());
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (!proxyProtocol) {
      clientOf.set(socket, 'shared');
      server.emit('connection', socket);
      return;
    }
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const crlf = buffered.indexOf('\r\n');
      if (crlf < 0) {
        if (buffered.length > 107) socket.destroy();
        return;
      }
      socket.removeListener('data', onData);
      socket.pause();
      clientOf.set(socket, V1ProxyProtocol.parse(buffered.subarray(0, crlf + 2).toString('latin1')).source.ipAddress);
      const rest = buffered.subarray(crlf + 2);
      if (rest.length > 0) socket.unshift(rest);
      server.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
  });
  const port = await listenLoopback(front);
  return {
    name,
    address: `127.0.0.1:${port}`,
    seen,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        front.close(() => resolve());
      }),
  };
}
