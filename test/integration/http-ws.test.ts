import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';

let upstreams: HttpUpstream[];
let tether: RunningTether;

beforeAll(async () => {
  upstreams = await Promise.all(['a', 'b', 'c'].map((n) => startHttpUpstream(n)));
  tether = await startTether({
    TETHER_MODE: 'http',
    TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','),
    TETHER_HEALTH: 'off',
    TETHER_KEY: 'query:id,cookie:id',
  });
});

afterAll(async () => {
  await tether.close();
  await Promise.all(upstreams.map((u) => u.close()));
});

interface Open {
  readonly ws: WebSocket;
  readonly upstream: string;
  /** Messages after the greeting. */
  readonly inbox: (Buffer | string)[];
}

/** Open a WebSocket through tether; resolves with the greeting (the upstream's name). */
function open(path: string, headers: Record<string, string> = {}): Promise<Open> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${tether.port}${path}`, { headers, maxPayload: 4 * 1024 * 1024 });
    const inbox: (Buffer | string)[] = [];
    let upstream: string | null = null;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (upstream === null) {
        upstream = data.toString();
        resolve({ ws, upstream, inbox });
      } else {
        inbox.push(isBinary ? data : data.toString());
      }
    });
    ws.once('error', reject);
  });
}

async function next(o: Open, timeoutMs = 10_000): Promise<Buffer | string> {
  const deadline = Date.now() + timeoutMs;
  while (o.inbox.length === 0) {
    if (Date.now() > deadline) throw new Error('no echo in time');
    await new Promise((r) => setTimeout(r, 5));
  }
  return o.inbox.shift()!;
}

describe('http mode: WebSocket upgrades pinned by key', () => {
  it('60 session ids x 3 connections, id in the query or a cookie: each id on one upstream, all three used', async () => {
    const byId = new Map<string, Set<string>>();
    const opened: Open[] = [];
    for (let round = 0; round < 3; round++) {
      const batch = await Promise.all(
        Array.from({ length: 60 }, (_, i) => {
          const id = `session-${i}-${'x'.repeat(i % 7)}`;
          // Alternately in the query string and in a cookie.
          const viaQuery = (i + round) % 2 === 0;
          return open(viaQuery ? `/chat?id=${encodeURIComponent(id)}` : '/chat', viaQuery ? {} : { cookie: `theme=dark; id=${id}` }).then((o) => {
            if (!byId.has(id)) byId.set(id, new Set());
            byId.get(id)!.add(o.upstream);
            return o;
          });
        }),
      );
      opened.push(...batch);
    }
    expect(opened).toHaveLength(180);
    for (const [id, set] of byId) expect([id, [...set]]).toEqual([id, [...set].slice(0, 1)]);
    const used = new Set([...byId.values()].map((s) => [...s][0]));
    expect(used).toEqual(new Set(['a', 'b', 'c']));
    // /route agrees with where the connections went.
    for (const [id, set] of [...byId].slice(0, 10)) {
      const route = (await adminCall(tether.admin, 'GET', `/route?key=${encodeURIComponent(id)}`)).body as { upstream: string };
      expect(route.upstream).toBe([...set][0]);
    }
    // Messages echo both ways on every connection.
    await Promise.all(
      opened.map(async (o, i) => {
        o.ws.send(`ping ${i}`);
        expect(await next(o)).toBe(`ping ${i}`);
      }),
    );
    for (const o of opened) o.ws.close();
    // 180 upgrades reached upstreams, as upgrades.
    expect(upstreams.reduce((n, u) => n + u.seen.filter((r) => r.method === 'UPGRADE').length, 0)).toBe(180);
  }, 60_000);

  it('carries a 1 MiB binary message intact both ways', async () => {
    const o = await open('/bulk?id=big');
    const payload = randomBytes(1024 * 1024);
    o.ws.send(payload, { binary: true });
    const echoed = await next(o, 20_000);
    expect(Buffer.isBuffer(echoed)).toBe(true);
    expect((echoed as Buffer).equals(payload)).toBe(true);
    o.ws.close();
  });

  it('passes the upgrade request to the upstream unchanged, with any bytes sent right after it', async () => {
    const o = await open('/raw?id=r1', { cookie: 'a=b', 'x-custom': 'yes' });
    const seen = upstreams.flatMap((u) => u.seen).filter((r) => r.url === '/raw?id=r1');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-custom']).toBe('yes');
    expect(seen[0]!.headers.cookie).toBe('a=b');
    expect(seen[0]!.headers.upgrade).toBe('websocket');
    o.ws.close();
  });
});
