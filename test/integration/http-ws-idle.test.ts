import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { listenLoopback } from '../helpers/listen.js';
import { startTether, type RunningTether } from '../helpers/tether.js';

/**
 * TETHER_IDLE_TIMEOUT_MS for upgraded connections in http mode: they are swept like
 * tcp mode's connections (src/proxy/idle.ts), with stamps from both relay paths,
 * the client's 'data' events (node:http hands the socket over) and the upstream's
 * relay reads.
 */
let server: http.Server;
let wss: WebSocketServer;
let tether: RunningTether;

beforeAll(async () => {
  // Greets, echoes, and for ?id=upstream-talks sends a message every 100 ms unasked.
  server = http.createServer();
  wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.send('hello');
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    if (req.url?.includes('upstream-talks')) {
      const timer = setInterval(() => ws.send('tick'), 100);
      ws.on('close', () => clearInterval(timer));
    }
  });
  const port = await listenLoopback(server);
  tether = await startTether({
    TETHER_MODE: 'http',
    TETHER_UPSTREAMS: `a=127.0.0.1:${port}`,
    TETHER_HEALTH: 'off',
    TETHER_KEY: 'query:id',
    TETHER_IDLE_TIMEOUT_MS: '400',
  });
});

afterAll(async () => {
  await tether.close();
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  server.close();
});

function open(id: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${tether.port}/ws?id=${id}`);
    ws.once('message', () => resolve(ws)); // the upstream's greeting
    ws.once('error', reject);
  });
}

function closedAt(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', () => resolve(Date.now())));
}

describe('http mode: idle upgraded connections', () => {
  it('closes a silent upgrade after the idle timeout, keeps one the client talks on and one the upstream talks on', async () => {
    const silent = await open('silent');
    const clientTalks = await open('client-talks');
    const upstreamTalks = await open('upstream-talks');
    const started = Date.now();
    const silentClosed = closedAt(silent);
    // The client sends (and the upstream echoes): stays open. The upstream sends
    // every 100 ms unasked, the client never: stays open too.
    const fromClient = setInterval(() => clientTalks.send('x'), 100);
    const at = await silentClosed;
    expect(at - started).toBeGreaterThanOrEqual(350);
    expect(at - started).toBeLessThan(5_000);
    await new Promise((r) => setTimeout(r, 800));
    expect(clientTalks.readyState).toBe(WebSocket.OPEN);
    expect(upstreamTalks.readyState).toBe(WebSocket.OPEN);
    clearInterval(fromClient);
    const quietSince = Date.now();
    const at2 = await closedAt(clientTalks);
    expect(at2 - quietSince).toBeGreaterThanOrEqual(350);
    expect(at2 - quietSince).toBeLessThan(5_000);
    upstreamTalks.close();
  });
});
