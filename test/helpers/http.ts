import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { listenLoopback } from './listen.js';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly bodyBytes: number;
}

/**
 * A real HTTP/1.1 + WebSocket upstream for http-mode tests. Every response names
 * the upstream (`x-upstream` header and body `NAME METHOD URL BODYBYTES`);
 * `POST /create?id=ID` answers `x-upload: ID` (something to learn from),
 * `GET /login?sid=ID` sets the cookie `sid=ID`. WebSocket connections are greeted
 * with `NAME` and echoed (binary stays binary).
 */
export interface HttpUpstream {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly seen: SeenRequest[];
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean;

export async function startHttpUpstream(name: string, handler?: Handler): Promise<HttpUpstream> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, bodyBytes: body.length });
      if (handler?.(req, res, body)) return;
      const url = new URL(req.url!, 'http://x');
      res.setHeader('x-upstream', name);
      if (req.method === 'POST' && url.pathname === '/create') res.setHeader('x-upload', url.searchParams.get('id') ?? '');
      if (url.pathname === '/login') res.setHeader('set-cookie', `sid=${url.searchParams.get('sid') ?? ''}; Path=/; HttpOnly`);
      const text = `${name} ${req.method} ${req.url} ${body.length}\n`;
      res.setHeader('content-length', Buffer.byteLength(text));
      res.end(text);
    });
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ server, maxPayload: 4 * 1024 * 1024 });
  wss.on('connection', (ws, req) => {
    seen.push({ method: 'UPGRADE', url: req.url!, headers: req.headers, bodyBytes: 0 });
    ws.send(name);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const port = await listenLoopback(server);
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    seen,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * A raw client connection that reads HTTP/1.1 responses in order (Content-Length
 * or close-delimited bodies: tether's own answers and the test upstreams' use
 * those), so tests can pipeline and send bytes no well-behaved client would.
 */
export class RawClient {
  readonly socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #waiters: (() => void)[] = [];

  constructor(port: number, localAddress = '127.0.0.1') {
    this.socket = net.connect({ host: '127.0.0.1', port, localAddress });
    this.socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  get ended(): boolean {
    return this.#ended;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next response; null when the connection closed first. Rejects after timeoutMs. */
  async response(timeoutMs = 10_000): Promise<RawResponse | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.#parse();
      if (parsed !== undefined) return parsed;
      if (this.#ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no response in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves when the server has closed the connection. */
  closed(timeoutMs = 10_000): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.#ended) return resolve(true);
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #parse(): RawResponse | null | undefined {
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const lines = this.#buffer.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = headers['content-length'];
    if (length === undefined) {
      if (!this.#ended) return undefined;
      const body = this.#buffer.subarray(end + 4).toString();
      this.#buffer = Buffer.alloc(0);
      return { status, headers, body };
    }
    const total = end + 4 + Number(length);
    if (this.#buffer.length < total) return undefined;
    const body = this.#buffer.subarray(end + 4, total).toString();
    this.#buffer = this.#buffer.subarray(total);
    return { status, headers, body };
  }
}

/** A GET as raw text. */
export function get(path: string, headers: Record<string, string> = {}): string {
  let text = `GET ${path} HTTP/1.1\r\nHost: tether.test\r\n`;
  for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
  return `${text}\r\n`;
}

/**
 * A fresh key that tether (admin API at `admin()`) would hash to another upstream
 * than `self`. Upstreams that mint such ids make learning tests deterministic: a
 * request after the first reaches its session only through the learned pin, never
 * by the luck of the hash.
 */
export async function keyHashedAwayFrom(self: string, admin: () => string, mint: () => string): Promise<string> {
  for (;;) {
    const key = mint();
    const res = await fetch(`${admin()}/route?key=${encodeURIComponent(key)}`);
    const answer = (await res.json()) as { upstream: string | null; via: string };
    if (answer.via !== 'hash') throw new Error(`a fresh key was routed via ${answer.via}`);
    if (answer.upstream !== null && answer.upstream !== self) return key;
  }
}

/**
 * Cleanups run last-started-first after each test; one failing cleanup does not
 * leave the rest running. Call `register` in the test, `runAll` in afterEach.
 */
export class Cleanups {
  #pending: (() => Promise<void>)[] = [];

  register(cleanup: () => Promise<void>): void {
    this.#pending.push(cleanup);
  }

  async runAll(): Promise<void> {
    const pending = this.#pending.reverse();
    this.#pending = [];
    const errors: unknown[] = [];
    for (const cleanup of pending) await cleanup().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  }
}
