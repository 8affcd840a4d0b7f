import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { listenLoopback } from './listen.js';

export interface TestCert {
  readonly key: Buffer;
  readonly cert: Buffer;
}

/**
 * A self-signed certificate for a.example .. z.example (P-256, one day), made with
 * the openssl CLI. Names listed one by one: Node accepts no wildcard right under a
 * single-label name.
 */
export function makeCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'tether-tls-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=tether-test',
      '-addext', `subjectAltName=${Array.from({ length: 26 }, (_, i) => `DNS:${String.fromCharCode(97 + i)}.example`).join(',')}`,
    ], { stdio: 'ignore' });
    return { key: readFileSync(key), cert: readFileSync(cert) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TlsUpstream {
  readonly name: string;
  readonly address: string;
  /** The server names its TLS handshakes saw, in order. */
  readonly serverNames: string[];
  close(): Promise<void>;
}

/**
 * A TLS server that terminates the handshake tether passes through: it greets with
 * `NAME SERVERNAME\n` (the name the ClientHello it received carried), then echoes.
 */
export async function startTlsUpstream(name: string, cert: TestCert): Promise<TlsUpstream> {
  const sockets = new Set<net.Socket>();
  const serverNames: string[] = [];
  const server = tls.createServer({ key: cert.key, cert: cert.cert }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const servername = (socket as tls.TLSSocket & { servername?: string | false }).servername || '';
    serverNames.push(servername);
    socket.write(`${name} ${servername}\n`);
    socket.pipe(socket);
  });
  server.on('tlsClientError', () => {});
  const port = await listenLoopback(server);
  return {
    name,
    address: `127.0.0.1:${port}`,
    serverNames,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TlsExchange {
  /** The upstream's greeting: `NAME SERVERNAME`. */
  readonly greeting: string;
  /** What came back of `payload`. */
  readonly echoed: Buffer;
}

/**
 * A TLS connection through tether from `localAddress` with `servername`, verifying
 * the certificate against `cert`: reads the greeting, sends `payload`, reads it back.
 */
export function tlsExchange(port: number, servername: string, localAddress: string, cert: TestCert, payload: Buffer): Promise<TlsExchange> {
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress });
    const socket = tls.connect({ socket: raw, servername, ca: cert.cert });
    let received = Buffer.alloc(0);
    let greeting: string | null = null;
    const timer = setTimeout(() => done(new Error(`no answer for ${servername} within 10 s`)), 10_000);
    const done = (err: Error | null): void => {
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      if (err !== null) reject(err);
      else resolve({ greeting: greeting!, echoed: received });
    };
    socket.on('error', done);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (greeting === null) {
        const nl = received.indexOf(10);
        if (nl < 0) return;
        greeting = received.subarray(0, nl).toString();
        received = received.subarray(nl + 1);
        socket.write(payload);
      }
      if (received.length >= payload.length) done(null);
    });
  });
}

/** The bytes a TLS client sends first (its ClientHello) for `servername`, captured from a real one. */
export async function captureClientHello(servername: string): Promise<Buffer> {
  const server = net.createServer();
  const port = await listenLoopback(server);
  const first = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk);
        socket.destroy();
      });
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  client.on('error', () => {});
  const hello = await first;
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return hello;
}
