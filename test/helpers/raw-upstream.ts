import net from 'node:net';
import { listenLoopback } from './listen.js';

/** One request as a raw upstream parsed it off the wire. */
export interface LoggedRequest {
  /** Arrival order across every raw upstream of the test process. */
  readonly seq: number;
  readonly upstream: string;
  /** Which upstream connection carried it (1, 2, ... per upstream). */
  readonly connection: number;
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly headers: Record<string, string>;
  readonly bodyBytes: number;
}

/** What a raw upstream answers to a request (defaults: 200 naming itself, connection kept). */
export interface RawAnswer {
  readonly status?: number;
  readonly reason?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** 101 only: after the answer, the connection echoes what it reads. */
  readonly tunnel?: boolean;
  /** Answer this much later (what arrives meanwhile on a tunnel is recorded in `early`). */
  readonly delayMs?: number;
}

export interface RawUpstream {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  /** Every request parsed, in order. */
  readonly log: LoggedRequest[];
  /** Bytes that were not a well-formed HTTP/1.1 request: each one closed its connection. */
  readonly garbage: string[];
  /** Bytes read on tunnels (after a 101 request), per connection, in order. */
  readonly tunnelled: string[];
  /** Of those, the bytes that arrived before the 101 was sent. */
  readonly early: string[];
  /** Connections accepted so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

let sequence = 0;

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(1\.[01])$/;
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*$/;
const CHUNK_LINE = /^([0-9a-fA-F]{1,8})(?:;[^\r\n]*)?$/;

/**
 * A strict HTTP/1.1 upstream that parses requests itself, byte by byte, and logs
 * each one: the witness of what tether forwards. It needs no llhttp (node:http
 * drops bytes after an upgrade it did not take, which would hide a smuggled
 * request); anything that is not a whole, well-formed request (CRLF lines, one of
 * Content-Length or chunked) is logged as garbage and the connection closed. Every
 * answer names the upstream (`x-upstream`, body `NAME METHOD TARGET BODYBYTES`).
 */
export async function startRawUpstream(name: string, answer: (req: LoggedRequest) => RawAnswer = () => ({})): Promise<RawUpstream> {
  const log: LoggedRequest[] = [];
  const garbage: string[] = [];
  const tunnelled: string[] = [];
  const early: string[] = [];
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    const connection = ++accepted;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let tunnel = -1;
    let switched = false;
    socket.on('data', (chunk: Buffer) => {
      if (tunnel >= 0) {
        tunnelled[tunnel] += chunk.toString('latin1');
        if (switched) socket.write(chunk);
        else early[tunnel] += chunk.toString('latin1');
        return;
      }
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const parsed = parseRequest(buffer);
        if (parsed === 'more') return;
        if (parsed === 'bad') {
          garbage.push(buffer.toString('latin1'));
          socket.destroy();
          return;
        }
        buffer = buffer.subarray(parsed.length);
        const req: LoggedRequest = { seq: ++sequence, upstream: name, connection, ...parsed.request };
        log.push(req);
        const a = answer(req);
        const status = a.status ?? 200;
        const body = status === 101 ? '' : a.body ?? `${name} ${req.method} ${req.target} ${req.bodyBytes}\n`;
        let head = `HTTP/1.1 ${status} ${a.reason ?? 'Answer'}\r\nx-upstream: ${name}\r\n`;
        for (const [k, v] of Object.entries(a.headers ?? {})) head += `${k}: ${v}\r\n`;
        if (status !== 101) head += `content-length: ${Buffer.byteLength(body)}\r\n`;
        else head += `upgrade: ${req.headers.upgrade ?? ''}\r\nconnection: Upgrade\r\n`;
        if (status === 101 && a.tunnel) {
          tunnel = tunnelled.push('') - 1;
          early.push(buffer.toString('latin1'));
          tunnelled[tunnel] += buffer.toString('latin1');
          const t = tunnel;
          setTimeout(() => {
            socket.write(`${head}\r\n`);
            switched = true;
            // What came before the 101 is echoed after it.
            if (early[t]!.length > 0) socket.write(Buffer.from(early[t]!, 'latin1'));
          }, a.delayMs ?? 0);
          return;
        }
        socket.write(`${head}\r\n${body}`);
        if ((req.headers.connection ?? '').toLowerCase().includes('close')) {
          socket.end();
          return;
        }
      }
    });
  });
  const port = await listenLoopback(server);
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    log,
    garbage,
    tunnelled,
    early,
    connections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

type ParsedRequest = Omit<LoggedRequest, 'seq' | 'upstream' | 'connection'>;

/** One whole request at the start of `buffer`, 'more' if incomplete, 'bad' if malformed. */
function parseRequest(buffer: Buffer): { request: ParsedRequest; length: number } | 'more' | 'bad' {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return buffer.length > 65_536 || hasBareLineEnd(buffer, buffer.length) ? 'bad' : 'more';
  if (hasBareLineEnd(buffer, end + 4)) return 'bad';
  const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const first = REQUEST_LINE.exec(lines[0]!);
  if (first === null) return 'bad';
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const field = FIELD_LINE.exec(line);
    if (field === null) return 'bad';
    const key = field[1]!.toLowerCase();
    if (key in headers) {
      if (key === 'content-length' || key === 'transfer-encoding' || key === 'host') return 'bad';
      headers[key] += `, ${field[2]!}`;
    } else headers[key] = field[2]!;
  }
  if (first[3] === '1.1' && headers.host === undefined) return 'bad';
  let offset = end + 4;
  let bodyBytes = 0;
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te !== undefined) {
    if (cl !== undefined || te.toLowerCase() !== 'chunked') return 'bad';
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', offset);
      if (lineEnd < 0) return 'more';
      const size = CHUNK_LINE.exec(buffer.subarray(offset, lineEnd).toString('latin1'));
      if (size === null) return 'bad';
      const n = parseInt(size[1]!, 16);
      offset = lineEnd + 2;
      if (n === 0) {
        // Trailer fields, then the empty line.
        for (;;) {
          const trailerEnd = buffer.indexOf('\r\n', offset);
          if (trailerEnd < 0) return 'more';
          const line = buffer.subarray(offset, trailerEnd).toString('latin1');
          offset = trailerEnd + 2;
          if (line === '') break;
          if (FIELD_LINE.exec(line) === null) return 'bad';
        }
        break;
      }
      if (buffer.length < offset + n + 2) return 'more';
      if (buffer[offset + n] !== 0x0d || buffer[offset + n + 1] !== 0x0a) return 'bad';
      bodyBytes += n;
      offset += n + 2;
    }
  } else if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) return 'bad';
    bodyBytes = Number(cl);
    if (buffer.length < offset + bodyBytes) return 'more';
    offset += bodyBytes;
  }
  return { request: { method: first[1]!, target: first[2]!, version: first[3]!, headers, bodyBytes }, length: offset };
}

/** A CR not followed by LF, or an LF not preceded by CR, in the first `end` bytes. */
function hasBareLineEnd(buffer: Buffer, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = buffer[i];
    if (c === 0x0d && i + 1 < buffer.length && buffer[i + 1] !== 0x0a) return true;
    if (c === 0x0a && (i === 0 || buffer[i - 1] !== 0x0d)) return true;
  }
  return false;
}
