import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, RawClient, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { seededRandom } from '../helpers/random.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';

/**
 * Request smuggling and hostile heads (docs/routing.md, rule 8). Each case must get its
 * status and a close, and nothing after an ambiguous head may reach an upstream as
 * a request of its own.
 */
const SMUGGLING: [string, string, number][] = [
  ['Content-Length with Transfer-Encoding (CL.TE)', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['Transfer-Encoding with Content-Length (TE.CL)', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['conflicting Content-Lengths', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['repeated equal Content-Lengths', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', 400],
  ['Content-Length list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc', 400],
  ['negative Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n', 400],
  ['signed Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc', 400],
  ['hex Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc', 400],
  ['Transfer-Encoding: xchunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['chunked not last', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', 400],
  ['space before colon', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['vertical tab before value', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n', 400],
  ['obs-fold Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n', 400],
  ['two Transfer-Encodings', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n', 400],
  ['bad chunk size', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400],
  ['chunk size overflow', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n', 400],
  ['chunk without CRLF', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n', 400],
  ['chunk extension ended by bare LF', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x\nabc\r\n0\r\n\r\n', 400],
  ['bare LF line endings', 'GET / HTTP/1.1\nHost: x\n\n', 400],
  ['bare CR', 'GET / HTTP/1.1\rHost: x\r\n\r\n', 400],
  ['NUL in a header', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', 400],
  ['header without colon', 'GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', 400],
  ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400],
  ['unknown version', 'GET / HTTP/9.9\r\nHost: x\r\n\r\n', 400],
  ['bad method', 'G@T / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['space in target', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ['a TLS ClientHello', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 400],
  // llhttp takes it (a CONNECT whose target is empty, HTTP/0.9), but no request line
  // written upstream can carry an empty target: found by the HTTP head fuzz.
  ['CONNECT with an empty target', 'CONNECT \r\nHost: x\r\n\r\n', 400],
];

let upstream: HttpUpstream;
let tether: RunningTether;

beforeAll(async () => {
  upstream = await startHttpUpstream('only');
  tether = await startTether({
    TETHER_MODE: 'http',
    TETHER_UPSTREAMS: `only=${upstream.address}`,
    TETHER_HEALTH: 'off',
    TETHER_KEY: 'header:x-key',
    TETHER_HEAD_TIMEOUT_MS: '600',
    TETHER_MAX_HEAD_BYTES: '4096',
  });
});

afterAll(async () => {
  await tether.close();
  await upstream.close();
});

async function exchange(bytes: string | Buffer): Promise<{ status: number | null; closed: boolean }> {
  const c = new RawClient(tether.port);
  try {
    c.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
    const res = await c.response();
    return { status: res?.status ?? null, closed: await c.closed(5000) };
  } finally {
    c.destroy();
  }
}

describe('http mode: hostile heads', () => {
  for (const [name, bytes, status] of SMUGGLING) {
    it(`${name}: ${status} and close`, async () => {
      expect(await exchange(bytes)).toEqual({ status, closed: true });
    });
  }

  it('let nothing smuggled reach the upstream', () => {
    expect(upstream.seen.filter((r) => r.url.includes('smuggled'))).toEqual([]);
  });

  it('answers 431 to a head over TETHER_MAX_HEAD_BYTES', async () => {
    expect(await exchange(get('/', { 'x-big': 'a'.repeat(5000) }))).toEqual({ status: 431, closed: true });
  });

  it('answers 408 to a head trickled past TETHER_HEAD_TIMEOUT_MS', async () => {
    const c = new RawClient(tether.port);
    const started = Date.now();
    const text = get('/slow', { 'x-pad': 'p'.repeat(40) });
    let i = 0;
    const trickle = setInterval(() => {
      if (i < text.length - 4 && !c.ended) c.write(text[i++]!);
    }, 20);
    try {
      const res = await c.response(10_000);
      expect(res?.status).toBe(408);
      expect(await c.closed(5000)).toBe(true);
      // Cut at the deadline (checked on a tick of at most a tenth of it), not later.
      expect(Date.now() - started).toBeLessThan(600 + 3000);
    } finally {
      clearInterval(trickle);
      c.destroy();
    }
    expect(upstream.seen.some((r) => r.url === '/slow')).toBe(false);
  });

  it('closes a connection that never sends a byte with 408', async () => {
    const c = new RawClient(tether.port);
    try {
      const res = await c.response(10_000);
      expect(res?.status).toBe(408);
      expect(await c.closed(5000)).toBe(true);
    } finally {
      c.destroy();
    }
  });

  it('lets a client still sending after a bad head read its 400: the rest is read and dropped, then the close', async () => {
    // Found by the HTTP head fuzz: tether answered and closed at once, so the client's
    // next bytes met a reset, its write failed (EPIPE) and it never read the 400.
    const socket = net.connect({ host: '127.0.0.1', port: tether.port });
    const errors: string[] = [];
    socket.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? err.message));
    // A busy client: it does not read yet, it only writes.
    socket.pause();
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /\x00 HTTP/1.1\r\nHost: x\r\n');
    await new Promise((r) => setTimeout(r, 200));
    socket.write('X-More: still sending\r\n');
    await new Promise((r) => setTimeout(r, 200));
    socket.write('\r\nmore bytes');
    await new Promise((r) => setTimeout(r, 100));
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    socket.resume();
    const started = Date.now();
    const closed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    socket.destroy();
    expect(errors).toEqual([]);
    expect(data).toMatch(/^HTTP\/1\.1 400 /);
    // Closed by tether once the client was quiet, though it never closed its side.
    expect(closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('answers a malformed chunk after a good head with 400 and aborts the upstream request', async () => {
    const c = new RawClient(tether.port);
    try {
      c.write('POST /half HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
      await new Promise((r) => setTimeout(r, 200));
      c.write('zz\r\n');
      const res = await c.response();
      expect(res?.status).toBe(400);
      expect(await c.closed(5000)).toBe(true);
    } finally {
      c.destroy();
    }
    // The upstream saw a request start but never a complete body.
    expect(upstream.seen.some((r) => r.url === '/half')).toBe(false);
  });

  it('survives 2,000 connections of random bytes and keeps serving', async () => {
    const random = seededRandom(0x5eed);
    let answered = 0;
    let closedOnly = 0;
    const one = async (): Promise<void> => {
      const length = 1 + Math.floor(random() * 600);
      const bytes = Buffer.alloc(length);
      for (let j = 0; j < length; j++) bytes[j] = Math.floor(random() * 256);
      // Half of them start like a request, so the parser gets past the method.
      if (random() < 0.5) Buffer.from('GET / HTTP/1.1\r\n').copy(bytes);
      const { status, closed } = await exchange(bytes);
      expect(closed).toBe(true);
      if (status !== null) answered++;
      else closedOnly++;
    };
    for (let batch = 0; batch < 2000; batch += 100) await Promise.all(Array.from({ length: 100 }, one));
    expect(answered + closedOnly).toBe(2000);
    expect(answered).toBeGreaterThan(1000);
    const res = await fetch(`http://127.0.0.1:${tether.port}/after`, { headers: { 'x-key': 'k' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('only GET /after 0\n');
    expect((await adminCall(tether.admin, 'GET', '/healthz')).status).toBe(200);
  }, 120_000);

  it('counts rejected heads as bad_request and timeout', async () => {
    const metrics = (await adminCall(tether.admin, 'GET', '/metrics')).body as string;
    const count = (outcome: string): number =>
      Number(new RegExp(`tether_connections_total\\{listener="default",upstream="",outcome="${outcome}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    expect(count('bad_request')).toBeGreaterThanOrEqual(SMUGGLING.length);
    expect(count('timeout')).toBeGreaterThanOrEqual(2);
  });
});

describe('http mode: a client that hangs up mid-request', () => {
  it('leaves tether serving', async () => {
    for (let i = 0; i < 50; i++) {
      const s = net.connect({ host: '127.0.0.1', port: tether.port });
      s.on('error', () => {});
      s.write('POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial');
      await new Promise((r) => setTimeout(r, 5));
      s.destroy();
    }
    const res = await fetch(`http://127.0.0.1:${tether.port}/still`);
    expect(res.status).toBe(200);
  });
});
