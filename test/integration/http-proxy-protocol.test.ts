import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { get, RawClient, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { listenLoopback } from '../helpers/listen.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';

let tether: RunningTether | null = null;
const servers: net.Server[] = [];
const upstreams: HttpUpstream[] = [];

afterEach(async () => {
  await tether?.close();
  tether = null;
  for (const s of servers.splice(0)) s.close();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
});

/**
 * An HTTP upstream that expects a PROXY v1 line first on every connection and
 * answers each request with that line, so a test sees which client a connection
 * was opened for.
 */
async function proxyAwareUpstream(): Promise<number> {
  const server = net.createServer((socket) => {
    let buffered = '';
    let proxyLine: string | null = null;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      if (proxyLine === null) {
        const nl = buffered.indexOf('\r\n');
        if (nl < 0) return;
        proxyLine = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 2);
      }
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        buffered = buffered.slice(end + 4);
        const body = `${proxyLine}\n`;
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      }
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  return listenLoopback(server);
}

describe('http mode and the PROXY protocol', () => {
  it('sends each client its own upstream connections, each opened by a header naming that client', async () => {
    const port = await proxyAwareUpstream();
    tether = await startTether({ TETHER_MODE: 'http', TETHER_UPSTREAMS: `p=127.0.0.1:${port}`, TETHER_HEALTH: 'off', TETHER_PROXY_PROTOCOL: 'v1' });
    const a = new RawClient(tether.port, '127.0.0.2');
    const b = new RawClient(tether.port, '127.0.0.3');
    try {
      for (let i = 0; i < 3; i++) {
        a.write(get('/'));
        b.write(get('/'));
        expect((await a.response())!.body).toMatch(/^PROXY TCP4 127\.0\.0\.2 127\.0\.0\.1 \d+ \d+\n$/);
        expect((await b.response())!.body).toMatch(/^PROXY TCP4 127\.0\.0\.3 127\.0\.0\.1 \d+ \d+\n$/);
      }
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  it('reads a trusted PROXY header and keys source-ip on the address it names', async () => {
    const upstream = await startHttpUpstream('u');
    upstreams.push(upstream);
    const logs: Record<string, unknown>[] = [];
    tether = await startTether(
      { TETHER_MODE: 'http', TETHER_UPSTREAMS: `u=${upstream.address}`, TETHER_HEALTH: 'off', TETHER_ACCEPT_PROXY: 'v1', TETHER_TRUSTED_PROXIES: '127.0.0.0/8' },
      logs,
    );
    const c = new RawClient(tether.port);
    try {
      c.write(`PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n${get('/a')}`);
      expect((await c.response())!.status).toBe(200);
      c.write(get('/b'));
      expect((await c.response())!.status).toBe(200);
    } finally {
      c.destroy();
    }
    const access = logs.filter((l) => l.component === 'access' && l.method === 'GET');
    expect(access.map((l) => l.client)).toEqual(['203.0.113.7:5555', '203.0.113.7:5555']);
    const bad = new RawClient(tether.port);
    bad.write(`PROXY TCP4 nonsense\r\n${get('/')}`);
    expect(await bad.response()).toBeNull();
    bad.destroy();
  });

  it('refuses a sender outside TETHER_TRUSTED_PROXIES unanswered, counted and logged, before reading a byte', async () => {
    const upstream = await startHttpUpstream('u');
    upstreams.push(upstream);
    const logs: Record<string, unknown>[] = [];
    tether = await startTether(
      { TETHER_MODE: 'http', TETHER_UPSTREAMS: `u=${upstream.address}`, TETHER_HEALTH: 'off', TETHER_ACCEPT_PROXY: 'v1', TETHER_TRUSTED_PROXIES: '127.0.0.1/32' },
      logs,
    );
    const untrusted = new RawClient(tether.port, '127.0.0.9');
    untrusted.write(`PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n${get('/')}`);
    expect(await untrusted.response()).toBeNull();
    untrusted.destroy();
    expect(upstream.seen).toHaveLength(0);
    const refusal = logs.find((l) => l.outcome === 'refused');
    expect(refusal).toMatchObject({ reason: 'untrusted PROXY sender', upstream: null });
    expect(String(refusal!.client)).toMatch(/^127\.0\.0\.9:\d+$/);
    const metrics = String((await adminCall(tether.admin, 'GET', '/metrics')).body);
    expect(metrics).toMatch(/tether_connections_total\{[^}]*outcome="refused"[^}]*\} 1$/m);
    // The trusted sender is served.
    const trusted = new RawClient(tether.port, '127.0.0.1');
    try {
      trusted.write(`PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n${get('/')}`);
      expect((await trusted.response())!.status).toBe(200);
    } finally {
      trusted.destroy();
    }
  });
});
