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

/** Opens a WebSocket; resolves with it and when its upstream's greeting arrived. */
function open(id: string): Promise<{ ws: WebSocket; greetedAt: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${tether.port}/ws?id=${id}`);
    ws.once('message', () => resolve({ ws, greetedAt: Date.now() }));
    ws.once('error', reject);
  });
}

/**
 * The earliest a close may come after a connection's last byte: the timeout (400 ms)
 * less what the sweeper's coarse clock may lag (one 50 ms interval, and as much again
 * for a late timer on a loaded machine).
 */
const EARLIEST_MS = 300;

function closedAt(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', () => resolve(Date.now())));
}

describe('http mode: idle upgraded connections', () => {
  it('closes a silent upgrade after the idle timeout, keeps one the client talks on and one the upstream talks on', async () => {
    const silent = await open('silent');
    const { ws: clientTalks } = await open('client-talks');
    const { ws: upstreamTalks } = await open('upstream-talks');
    const silentClosed = closedAt(silent.ws);
    // The client sends (and the upstream echoes): stays open. The upstream sends
    // every 100 ms unasked, the client never: stays open too.
    let lastSent = Date.now();
    const fromClient = setInterval(() => {
      clientTalks.send('x');
      lastSent = Date.now();
    }, 100);
    const at = await silentClosed;
    expect(at - silent.greetedAt).toBeGreaterThanOrEqual(EARLIEST_MS);
    expect(at - silent.greetedAt).toBeLessThan(5_000);
    await new Promise((r) => setTimeout(r, 800));
    expect(clientTalks.readyState).toBe(WebSocket.OPEN);
    expect(upstreamTalks.readyState).toBe(WebSocket.OPEN);
    clearInterval(fromClient);
    const at2 = await closedAt(clientTalks);
    expect(at2 - lastSent).toBeGreaterThanOrEqual(EARLIEST_MS);
    expect(at2 - lastSent).toBeLessThan(5_000);
    upstreamTalks.close();
  });
});
