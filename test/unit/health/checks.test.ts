import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { HealthCheck } from '../../../src/config/types.js';
import { runCheck } from '../../../src/health/checks.js';
import { HOST, blackhole, close, closedPort, connections, listen, track, waitFor } from './helpers.js';

const servers: net.Server[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

async function serve<T extends net.Server>(server: T): Promise<{ server: T; port: number }> {
  servers.push(track(server));
  return { server, port: await listen(server) };
}

/** An HTTP server that records every request and answers with `answer`. */
async function httpServer(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: http.IncomingMessage[] = [];
  const { server, port } = await serve(
    http.createServer((req, res) => {
      seen.push(req);
      answer(req, res);
    }),
  );
  return { server, port, seen };
}

/**
 * Accepts connections, reads and discards, never writes a byte. Reading matters: a
 * socket nobody reads never sees the client's FIN, so it would outlive the check.
 */
async function silentServer() {
  return serve(net.createServer((socket) => socket.resume()));
}

describe('tcp', () => {
  it('passes when the port accepts, and closes the connection at once', async () => {
    const { server, port } = await serve(net.createServer());
    const result = await runCheck({ kind: 'tcp' }, { host: HOST, port }, 1000);
    expect(result).toEqual({ ok: true, reason: 'connected' });
    await waitFor(async () => (await connections(server)) === 0, 'the check connection to close');
  });

  it('fails with connect ECONNREFUSED on a closed port', async () => {
    const port = await closedPort();
    expect(await runCheck({ kind: 'tcp' }, { host: HOST, port }, 1000)).toEqual({
      ok: false,
      reason: 'connect ECONNREFUSED',
    });
  });

  it('fails with timeout when SYNs go unanswered', async () => {
    const hole = await blackhole();
    cleanups.push(hole.close);
    const started = Date.now();
    const result = await runCheck({ kind: 'tcp' }, { host: HOST, port: hole.port }, 300);
    const elapsed = Date.now() - started;
    expect(result).toEqual({ ok: false, reason: 'timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(300 + 2000);
  });

  it('fails on a name that does not resolve', async () => {
    const result = await runCheck({ kind: 'tcp' }, { host: 'tether-no-such-host.invalid', port: 80 }, 5000);
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^(connect E[A-Z_]+|timeout)$/);
  });

  it('fails, without throwing, on a port out of range', async () => {
    const result = await runCheck({ kind: 'tcp' }, { host: HOST, port: 70000 }, 1000);
    expect(result.ok).toBe(false);
  });
});

describe('http', () => {
  it('sends GET PATH with Host, Connection: close and User-Agent, and passes on 200', async () => {
    const { port, seen } = await httpServer((_req, res) => res.end('fine'));
    const result = await runCheck({ kind: 'http', path: '/healthz?deep=1' }, { host: HOST, port }, 1000);
    expect(result).toEqual({ ok: true, reason: 'http 200' });
    expect(seen).toHaveLength(1);
    const req = seen[0]!;
    expect(req.method).toBe('GET');
    expect(req.url).toBe('/healthz?deep=1');
    expect(req.httpVersion).toBe('1.1');
    expect(req.headers.host).toBe(`${HOST}:${port}`);
    expect(req.headers.connection).toBe('close');
    expect(req.headers['user-agent']).toBe('tether-health');
  });

  it.each([
    [204, true],
    [301, true],
    [399, true],
    [404, false],
    [500, false],
    [503, false],
  ])('status %i -> ok %s', async (status, ok) => {
    const { port } = await httpServer((_req, res) => {
      res.statusCode = status;
      if (status >= 300 && status < 400) res.setHeader('Location', '/elsewhere');
      res.end();
    });
    expect(await runCheck({ kind: 'http', path: '/' }, { host: HOST, port }, 1000)).toEqual({
      ok,
      reason: `http ${status}`,
    });
  });

  it('times out within timeoutMs when the server never answers, and closes its socket', async () => {
    const { server, port } = await silentServer();
    const started = Date.now();
    const result = await runCheck({ kind: 'http', path: '/' }, { host: HOST, port }, 300);
    const elapsed = Date.now() - started;
    expect(result).toEqual({ ok: false, reason: 'timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(300 + 2000);
    await waitFor(async () => (await connections(server)) === 0, 'the timed-out connection to close');
  });

  it('times out when the body never ends (the deadline covers the whole exchange)', async () => {
    const { port } = await httpServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('partial');
    });
    expect(await runCheck({ kind: 'http', path: '/' }, { host: HOST, port }, 300)).toEqual({
      ok: false,
      reason: 'timeout',
    });
  });

  it('stops reading a large body and still passes on its status', async () => {
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const { port } = await httpServer((_req, res) => {
      res.writeHead(200);
      // Endless: only a reader that stops early can finish before the deadline.
      const pump = (): void => {
        while (res.write(chunk));
        res.once('drain', pump);
      };
      res.on('close', () => res.off('drain', pump));
      pump();
    });
    expect(await runCheck({ kind: 'http', path: '/' }, { host: HOST, port }, 3000)).toEqual({
      ok: true,
      reason: 'http 200',
    });
  });

  it('fails with connect ECONNREFUSED on a closed port', async () => {
    const port = await closedPort();
    expect(await runCheck({ kind: 'http', path: '/' }, { host: HOST, port }, 1000)).toEqual({
      ok: false,
      reason: 'connect ECONNREFUSED',
    });
  });

  it('fails when the server hangs up without answering', async () => {
    const { port } = await serve(net.createServer((socket) => socket.destroy()));
    const result = await runCheck({ kind: 'http', path: '/' }, { host: HOST, port }, 1000);
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^http /);
  });

  it('fails on a response that is not HTTP', async () => {
    const { port } = await serve(net.createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n')));
    const result = await runCheck({ kind: 'http', path: '/' }, { host: HOST, port }, 1000);
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^http /);
  });

  it('fails, without throwing, on a path Node refuses to send', async () => {
    const { port } = await httpServer((_req, res) => res.end());
    const result = await runCheck({ kind: 'http', path: '/a b' }, { host: HOST, port }, 1000);
    expect(result.ok).toBe(false);
  });
});

describe('ws', () => {
  async function wsServer(path: string) {
    const { server, port } = await serve(http.createServer((_req, res) => res.writeHead(426).end()));
    const wss = new WebSocketServer({ server, path });
    const paths: string[] = [];
    wss.on('connection', (_socket, req) => paths.push(req.url ?? ''));
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    return { server, port, paths };
  }

  it('passes on a real handshake to PATH, then closes the connection', async () => {
    const { server, port, paths } = await wsServer('/live');
    const result = await runCheck({ kind: 'ws', path: '/live' }, { host: HOST, port }, 1000);
    expect(result).toEqual({ ok: true, reason: 'ws open' });
    expect(paths).toEqual(['/live']);
    await waitFor(async () => (await connections(server)) === 0, 'the websocket to close');
  });

  it('fails when the path is not a WebSocket endpoint', async () => {
    const { port } = await wsServer('/live');
    const result = await runCheck({ kind: 'ws', path: '/other' }, { host: HOST, port }, 1000);
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^ws handshake failed: /);
  });

  it('fails when a plain HTTP server answers the upgrade with 200', async () => {
    const { port, seen } = await httpServer((_req, res) => res.end('not a websocket'));
    const result = await runCheck({ kind: 'ws', path: '/live' }, { host: HOST, port }, 1000);
    expect(result).toEqual({ ok: false, reason: 'ws handshake failed: Unexpected server response: 200' });
    expect(seen.map((req) => req.url)).toEqual(['/live']);
  });

  it('fails when the server destroys the socket', async () => {
    const { port } = await serve(net.createServer((socket) => socket.destroy()));
    const result = await runCheck({ kind: 'ws', path: '/live' }, { host: HOST, port }, 1000);
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^ws handshake failed: /);
  });

  it('times out when the server never answers the upgrade', async () => {
    const { server, port } = await silentServer();
    const started = Date.now();
    const result = await runCheck({ kind: 'ws', path: '/live' }, { host: HOST, port }, 300);
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/timeout|timed out/);
    expect(Date.now() - started).toBeLessThan(300 + 2000);
    await waitFor(async () => (await connections(server)) === 0, 'the handshake connection to close');
  });

  it('fails with connect ECONNREFUSED on a closed port', async () => {
    const port = await closedPort();
    expect(await runCheck({ kind: 'ws', path: '/' }, { host: HOST, port }, 1000)).toEqual({
      ok: false,
      reason: 'connect ECONNREFUSED',
    });
  });
});

describe('IPv6', () => {
  let v6 = true;
  it('http and ws put brackets around an IPv6 host', async (ctx) => {
    const server = track(http.createServer((req, res) => res.end(req.headers.host)));
    const hosts: string[] = [];
    server.on('request', (req: http.IncomingMessage) => hosts.push(req.headers.host ?? ''));
    const wss = new WebSocketServer({ server, path: '/ws' });
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    const port = await new Promise<number>((resolve) => {
      server.once('error', () => {
        v6 = false;
        resolve(0);
      });
      server.listen(0, '::1', () => resolve((server.address() as net.AddressInfo).port));
    });
    if (!v6) {
      ctx.skip();
      return;
    }
    servers.push(server);
    expect(await runCheck({ kind: 'http', path: '/' }, { host: '::1', port }, 1000)).toEqual({ ok: true, reason: 'http 200' });
    expect(hosts).toEqual([`[::1]:${port}`]);
    expect(await runCheck({ kind: 'ws', path: '/ws' }, { host: '::1', port }, 1000)).toEqual({ ok: true, reason: 'ws open' });
    expect(await runCheck({ kind: 'tcp' }, { host: '::1', port }, 1000)).toEqual({ ok: true, reason: 'connected' });
  });
});

describe('abort and cleanup', () => {
  it('an aborted check resolves at once as aborted and closes its socket', async () => {
    const { server, port } = await silentServer();
    const controller = new AbortController();
    const pending = runCheck({ kind: 'http', path: '/' }, { host: HOST, port }, 30_000, controller.signal);
    await waitFor(async () => (await connections(server)) === 1, 'the check to connect');
    controller.abort();
    expect(await pending).toEqual({ ok: false, reason: 'aborted' });
    await waitFor(async () => (await connections(server)) === 0, 'the aborted connection to close');
  });

  it('an already aborted signal opens nothing', async () => {
    let accepted = 0;
    const { port } = await serve(net.createServer(() => accepted++));
    const result = await runCheck({ kind: 'tcp' }, { host: HOST, port }, 1000, AbortSignal.abort());
    expect(result).toEqual({ ok: false, reason: 'aborted' });
    expect(accepted).toBe(0);
  });

  it('off always passes without touching the network', async () => {
    expect(await runCheck({ kind: 'off' }, { host: HOST, port: 1 }, 1000)).toEqual({ ok: true, reason: 'check off' });
  });

  it('leaves no socket or timer behind, whatever the outcome', async () => {
    const { port: okPort } = await httpServer((_req, res) => res.end());
    const { port: silentPort } = await silentServer();
    const refused = await closedPort();
    const count = (type: string): number => process.getActiveResourcesInfo().filter((t) => t === type).length;
    const kinds: HealthCheck[] = [{ kind: 'tcp' }, { kind: 'http', path: '/' }, { kind: 'ws', path: '/' }];
    const sockets = count('TCPSocketWrap');
    const timers = count('Timeout');

    // Fast outcomes under a long deadline: a deadline timer not cleared would still be
    // pending right after they resolve.
    const fast = [];
    for (let i = 0; i < 5; i++) {
      for (const port of [okPort, refused]) {
        for (const check of kinds) fast.push(runCheck(check, { host: HOST, port }, 30_000));
      }
    }
    expect((await Promise.all(fast)).every((r) => typeof r.ok === 'boolean')).toBe(true);
    expect(count('Timeout')).toBeLessThanOrEqual(timers);

    // Timeouts (tcp connects: the silent server accepts).
    const slow = kinds.map((check) => runCheck(check, { host: HOST, port: silentPort }, 200));
    expect((await Promise.all(slow)).map((r) => r.ok)).toEqual([true, false, false]);
    expect(count('Timeout')).toBeLessThanOrEqual(timers);

    await waitFor(() => count('TCPSocketWrap') <= sockets, 'sockets to return to where they were');
  });
});
