import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { UpstreamPool } from '../../../src/routing/pool.js';
import type { RouteVia } from '../../../src/routing/types.js';
import { Rebalancer, hashesElsewhere, type RoutedConnection } from '../../../src/routing/rebalance.js';
import type { Upstream } from '../../../src/routing/upstream.js';

/** An open connection as a listener would list it: records when it was told to close. */
class Conn implements RoutedConnection {
  open = true;
  closedAt: number | null = null;
  reason = '';
  constructor(
    readonly key: string | null,
    readonly via: RouteVia,
    readonly upstream: Upstream | null,
  ) {}
  close(reason: string): void {
    this.open = false;
    this.reason = reason;
    this.closedAt = performance.now();
  }
}

const pools: UpstreamPool[] = [];
const rebalancers: Rebalancer[] = [];
afterEach(() => {
  for (const r of rebalancers.splice(0)) r.stop();
  for (const p of pools.splice(0)) p.close();
});

async function poolOf(names: readonly string[]): Promise<UpstreamPool> {
  const p = new UpstreamPool(
    { algorithm: 'ring', vnodes: 160, balanceFactor: 0 },
    names.map((name) => ({ name, host: '127.0.0.1', port: 9, weight: 1 })),
  );
  pools.push(p);
  await p.settled(5_000);
  return p;
}

/** Connections for `n` keys, each routed by hash where the pool sends it now. */
function connect(p: UpstreamPool, n: number, via: RouteVia = 'hash'): Conn[] {
  return Array.from({ length: n }, (_, i) => {
    const key = `10.9.${i >> 8}.${i & 255}`;
    return new Conn(key, via, p.primary(key));
  });
}

describe('rebalance', () => {
  it('picks exactly the hash-routed connections whose key now hashes to another upstream', async () => {
    const p = await poolOf(['a', 'b', 'c']);
    const hashed = connect(p, 600);
    const learned = connect(p, 100, 'learned');
    const twoChoices = connect(p, 100, 'p2c');
    const keyless = [new Conn(null, 'hash', p.get('a')!)];
    p.put('d', '127.0.0.1', 9);
    await p.settled(5_000);
    const moved = hashed.filter((c) => p.primary(c.key!)!.name === 'd');
    expect(moved.length).toBeGreaterThan(600 * 0.15);
    expect(moved.length).toBeLessThan(600 * 0.35);
    for (const c of hashed) expect(hashesElsewhere(c, p)).toBe(moved.includes(c));
    // Placements the hash did not make are never undone.
    for (const c of [...learned, ...twoChoices, ...keyless]) expect(hashesElsewhere(c, p)).toBe(false);
    // Nor are connections still connecting.
    const connecting = new Conn(moved[0]!.key, 'hash', moved[0]!.upstream);
    connecting.open = false;
    expect(hashesElsewhere(connecting, p)).toBe(false);
  });

  it('closes them no faster than perSecond, spread over time, and only them', async () => {
    const p = await poolOf(['a', 'b', 'c']);
    const all = [...connect(p, 400), ...connect(p, 50, 'learned')];
    p.put('d', '127.0.0.1', 9);
    await p.settled(5_000);
    const r = new Rebalancer('default', p, () => all, createLogger('silent'));
    rebalancers.push(r);
    const perSecond = 200;
    const started = performance.now();
    const answer = r.start(perSecond);
    const expected = all.filter((c) => c.via === 'hash' && p.primary(c.key!)!.name === 'd');
    expect(answer).toEqual({ listener: 'default', moving: expected.length, perSecond });
    await expect.poll(() => r.pending, { timeout: 20_000 }).toBe(0);
    const closed = all.filter((c) => c.closedAt !== null);
    expect(new Set(closed)).toEqual(new Set(expected));
    for (const c of closed) expect(c.reason).toBe('rebalance');
    // The k-th close comes no earlier than k / perSecond seconds after the start.
    const times = closed.map((c) => c.closedAt! - started).sort((x, y) => x - y);
    times.forEach((t, k) => expect(t).toBeGreaterThanOrEqual(((k + 1) * 1000) / perSecond - 1));
  });

  it('skips a connection whose key hashes back home before its turn, and a new call replaces a running one', async () => {
    const p = await poolOf(['a', 'b', 'c']);
    const all = connect(p, 300);
    p.put('d', '127.0.0.1', 9);
    await p.settled(5_000);
    const r = new Rebalancer('default', p, () => all, createLogger('silent'));
    rebalancers.push(r);
    const first = r.start(5);
    expect(first.moving).toBeGreaterThan(10);
    // d leaves again: every picked key now hashes where its connection is.
    p.remove('d');
    await p.settled(5_000);
    // About six were due in this time: each is checked again at its turn and left open.
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    expect(r.pending).toBeLessThan(first.moving);
    expect(r.pending).toBeGreaterThan(0);
    expect(all.filter((c) => c.closedAt !== null)).toHaveLength(0);
    // A new call replaces the running one (and finds nothing to move).
    expect(r.start(1000).moving).toBe(0);
    expect(r.pending).toBe(0);
  });

  it('logs "rebalance started" with the listener once (the listener logger names it)', async () => {
    const p = await poolOf(['a', 'b']);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        callback();
      },
    });
    const logger = createLogger('info', sink).child({ component: 'listener', listener: 'main' });
    const r = new Rebalancer('main', p, () => [], logger);
    rebalancers.push(r);
    expect(r.start(10)).toEqual({ listener: 'main', moving: 0, perSecond: 10 });
    const line = lines.find((l) => l.includes('"rebalance started"'));
    // Raw text: JSON.parse would hide a key written twice.
    expect(line?.match(/"listener":/g)).toHaveLength(1);
    expect(JSON.parse(line!)).toMatchObject({ listener: 'main', moving: 0, perSecond: 10 });
  });
});
