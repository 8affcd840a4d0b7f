import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientAddress } from '../helpers/clients.js';
import { get, RawClient, startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';

const HEAD_TIMEOUT_MS = 2000;
const SLOW_CLIENTS = 1000;

let upstream: HttpUpstream;
let tether: RunningTether;

beforeAll(async () => {
  upstream = await startHttpUpstream('u');
  tether = await startTether({
    TETHER_MODE: 'http',
    TETHER_UPSTREAMS: `u=${upstream.address}`,
    TETHER_HEALTH: 'off',
    TETHER_KEY: 'header:x-key',
    TETHER_HEAD_TIMEOUT_MS: String(HEAD_TIMEOUT_MS),
  });
});

afterAll(async () => {
  await tether.close();
  await upstream.close();
});

describe('http mode: slowloris', () => {
  it(`cuts ${SLOW_CLIENTS} connections trickling heads at TETHER_HEAD_TIMEOUT_MS while normal clients are served`, async () => {
    const slow: RawClient[] = [];
    for (let i = 0; i < SLOW_CLIENTS; i++) slow.push(new RawClient(tether.port, clientAddress(i)));
    const text = get('/never-finished', { 'x-pad': 'p'.repeat(200) });
    let sent = 0;
    const started = Date.now();
    // One byte per connection every 100 ms: each head would take ~30 s to finish.
    const trickle = setInterval(() => {
      for (const c of slow) if (!c.ended) c.write(text[sent]!);
      sent = Math.min(sent + 1, text.length - 5);
    }, 100);
    let served = 0;
    let worst = 0;
    try {
      // Normal clients meanwhile: fresh connections, each request answered.
      while (Date.now() - started < HEAD_TIMEOUT_MS + 1000) {
        const t0 = Date.now();
        const res = await fetch(`http://127.0.0.1:${tether.port}/normal`, { headers: { 'x-key': `k${served}` } });
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('u GET /normal 0\n');
        worst = Math.max(worst, Date.now() - t0);
        served++;
        await new Promise((r) => setTimeout(r, 50));
      }
      const answers = await Promise.all(slow.map((c) => c.response(15_000)));
      const statuses = new Map<string, number>();
      for (const a of answers) statuses.set(String(a?.status ?? 'closed'), (statuses.get(String(a?.status ?? 'closed')) ?? 0) + 1);
      expect(Object.fromEntries(statuses)).toEqual({ '408': SLOW_CLIENTS });
      const closedAll = await Promise.all(slow.map((c) => c.closed(5000)));
      expect(closedAll.every(Boolean)).toBe(true);
      // Cut at the deadline: well before the ~30 s the heads would need.
      expect(Date.now() - started).toBeLessThan(HEAD_TIMEOUT_MS + 10_000);
    } finally {
      clearInterval(trickle);
      for (const c of slow) c.destroy();
    }
    expect(served).toBeGreaterThan(5);
    expect(upstream.seen.some((r) => r.url === '/never-finished')).toBe(false);
    const metrics = (await adminCall(tether.admin, 'GET', '/metrics')).body as string;
    const timeouts = Number(/tether_connections_total\{listener="default",upstream="",outcome="timeout"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(timeouts).toBeGreaterThanOrEqual(SLOW_CLIENTS);
    // Reported in docs/reliability.md, "Hostile input".
    console.log(`slowloris: ${SLOW_CLIENTS} cut with 408; ${served} normal requests served meanwhile, slowest ${worst} ms`);
  }, 60_000);
});
