import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildTable } from '../../../src/hashing/tables.js';
import { hashKey } from '../../../src/hashing/hash.js';
import type { Algorithm, Member } from '../../../src/hashing/types.js';
import type { TetherError } from '../../../src/errors.js';
import { UpstreamPool } from '../../../src/routing/pool.js';
import type { PoolOptions } from '../../../src/routing/types.js';
import { InlineTableBuilder } from '../../../src/builders/inline.js';
import { WorkerTableBuilder } from '../../../src/builders/worker.js';
import { seededRandom } from '../../helpers/random.js';
import { CountingBuilder, FailingBuilder, GatedBuilder } from './builders.js';

const KEYS = Array.from({ length: 2000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
const ring: PoolOptions = { algorithm: 'ring', vnodes: 160, balanceFactor: 0 };

const workers = new WorkerTableBuilder(1);
const pools: UpstreamPool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});
afterAll(() => workers.close());

function spec(name: string, weight = 1): { name: string; host: string; port: number; weight: number } {
  return { name, host: '127.0.0.1', port: 9, weight };
}

function pool(options: PoolOptions, names: readonly string[], hooks: ConstructorParameters<typeof UpstreamPool>[2] = {}): UpstreamPool {
  const p = new UpstreamPool(options, names.map((n) => spec(n)), hooks);
  pools.push(p);
  return p;
}

/** Where each key goes on a table built from scratch over `members`. */
function freshRouting(algorithm: Algorithm, members: readonly Member[]): string[] {
  const table = buildTable(algorithm, members, { vnodes: 160 });
  return KEYS.map((k) => table.members[table.primary(hashKey(k))]!.name);
}

function routing(p: UpstreamPool): string[] {
  return KEYS.map((k) => p.route(k, 1).candidates[0]!.name);
}

const names = (n: number, prefix = 'up-'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const asMembers = (list: readonly string[]): Member[] => list.map((name) => ({ name, weight: 1 }));

describe('UpstreamPool with tables built in worker threads', () => {
  it('routes by rendezvous before its first table, then exactly as a fresh build once settled', async () => {
    for (const algorithm of ['ring', 'maglev', 'rendezvous', 'modulo'] as const) {
      const list = names(12);
      const p = pool({ ...ring, algorithm }, list, { builder: workers });
      expect(p.tableStatus().tableVersion).toBe(-1);
      // No table yet: every key still gets an upstream, by rendezvous over the set.
      expect(routing(p)).toEqual(freshRouting('rendezvous', asMembers(list)));
      expect(await p.settled(10_000)).toBe(true);
      expect(p.tableStatus().tableVersion).toBe(p.tableStatus().version);
      expect(routing(p), algorithm).toEqual(freshRouting(algorithm, asMembers(list)));
      for (const k of KEYS.slice(0, 200)) expect(p.primary(k)!.name).toBe(p.route(k, 1).candidates[0]!.name);
    }
  });

  it('coalesces a burst: 300 changes during builds cost a few builds, and the last is of the newest membership', async () => {
    const builder = new CountingBuilder(workers);
    const p = pool(ring, names(50), { builder });
    await p.settled(10_000);
    const before = builder.requests.length;
    for (let i = 0; i < 300; i++) p.put(`new-${i}`, '127.0.0.1', 9);
    for (let i = 0; i < 50; i++) p.remove(`up-${i}`);
    expect(await p.settled(20_000)).toBe(true);
    const builds = builder.requests.length - before;
    // The one running when the burst began (if any) and one of the newest membership.
    expect(builds).toBeLessThanOrEqual(2);
    const last = builder.requests.at(-1)!;
    expect(last.members.map((m) => m.name).sort()).toEqual(names(300, 'new-').sort());
    expect(routing(p)).toEqual(freshRouting('ring', asMembers(names(300, 'new-'))));
  });

  it('several listeners share one build thread, and each ends on its newest membership', async () => {
    const shared = new CountingBuilder(workers);
    const listeners = [pool(ring, names(200, 'a-'), { builder: shared }), pool({ ...ring, algorithm: 'maglev' }, names(200, 'b-'), { builder: shared })];
    for (let round = 0; round < 20; round++) {
      for (const [i, p] of listeners.entries()) {
        p.put(`${i}-extra-${round}`, '127.0.0.1', 9);
        if (round % 3 === 0) p.remove(`${i === 0 ? 'a' : 'b'}-${round}`);
      }
    }
    expect(await Promise.all(listeners.map((p) => p.settled(20_000)))).toEqual([true, true]);
    for (const [i, p] of listeners.entries()) {
      const prefix = i === 0 ? 'a-' : 'b-';
      const removed = new Set(Array.from({ length: 20 }, (_, r) => r).filter((r) => r % 3 === 0).map((r) => `${prefix}${r}`));
      const final = [...names(200, prefix).filter((n) => !removed.has(n)), ...Array.from({ length: 20 }, (_, r) => `${i}-extra-${r}`)];
      expect(routing(p)).toEqual(freshRouting(i === 0 ? 'ring' : 'maglev', asMembers(final)));
    }
    // 80 changes over two listeners: far fewer builds.
    expect(shared.requests.length).toBeLessThan(12);
  });

  it('while a build is held back, a removed upstream is passed over exactly as the new ring will, and nothing else moves', async () => {
    const gate = new GatedBuilder(new InlineTableBuilder());
    const list = names(10);
    const p = pool(ring, list, { builder: gate });
    gate.release(true);
    await p.settled(5_000);
    const before = routing(p);
    gate.held = true;

    p.remove('up-3');
    p.drain('up-7');
    expect(gate.waiting).toBe(1);
    expect(await p.settled(50)).toBe(false);
    const rest = list.filter((n) => n !== 'up-3' && n !== 'up-7');
    const during = routing(p);
    expect(during).toEqual(freshRouting('ring', asMembers(rest)));
    // Keys that were on neither upstream did not move.
    before.forEach((name, i) => {
      if (name !== 'up-3' && name !== 'up-7') expect(during[i]).toBe(name);
    });
    // Retry order passes over them too.
    for (const k of KEYS.slice(0, 100)) {
      const c = p.route(k, 5).candidates.map((u) => u.name);
      expect(c).toHaveLength(5);
      expect(c).not.toContain('up-3');
      expect(c).not.toContain('up-7');
    }

    // A new upstream is reached once its table is in use.
    p.put('up-new', '127.0.0.1', 9);
    expect(routing(p)).not.toContain('up-new');
    gate.release(true);
    expect(await p.settled(5_000)).toBe(true);
    expect(routing(p)).toEqual(freshRouting('ring', asMembers([...rest, 'up-new'])));
  });

  it('falls back to rendezvous over the current set when none of the old table is routable', async () => {
    const gate = new GatedBuilder(new InlineTableBuilder());
    const p = pool(ring, ['a', 'b'], { builder: gate });
    gate.release(true);
    await p.settled(5_000);
    gate.held = true;
    p.put('c', '127.0.0.1', 9);
    p.put('d', '127.0.0.1', 9);
    p.remove('a');
    p.remove('b');
    expect(routing(p)).toEqual(freshRouting('rendezvous', asMembers(['c', 'd'])));
    gate.release(true);
    await p.settled(5_000);
    expect(routing(p)).toEqual(freshRouting('ring', asMembers(['c', 'd'])));
  });

  it('logs a failed build, keeps routing, retries, and settles on the newest membership', async () => {
    const failures: { code: string; failures: number; retryInMs: number }[] = [];
    const builder = new FailingBuilder(workers, 3);
    const p = pool(ring, names(5), {
      builder,
      onBuildFailed: (error: TetherError, n, retryInMs) => failures.push({ code: error.code, failures: n, retryInMs }),
    });
    // No table: rendezvous keeps every key routed meanwhile.
    expect(routing(p).every((n) => n.startsWith('up-'))).toBe(true);
    expect(await p.settled(20_000)).toBe(true);
    expect(failures.map((f) => f.code)).toEqual(['TETHER_ERR_RING_BUILD', 'TETHER_ERR_RING_BUILD', 'TETHER_ERR_RING_BUILD']);
    expect(failures.map((f) => f.failures)).toEqual([1, 2, 3]);
    // Backoff doubles.
    expect(failures[1]!.retryInMs).toBe(2 * failures[0]!.retryInMs);
    expect(p.tableStatus().failures).toBe(0);
    expect(routing(p)).toEqual(freshRouting('ring', asMembers(names(5))));
  });

  it('carries a TetherError code back from a worker whose build throws, and recovers when the membership is valid again', async () => {
    const errors: TetherError[] = [];
    // 40,000 points per unit of weight: an upstream of weight 256 beside three of 1
    // passes the ring's 8M-point limit, so the worker refuses the build. (Small valid
    // tables: building millions of points took over 20 s on a loaded CI machine.)
    const options: PoolOptions = { algorithm: 'ring', vnodes: 40_000, balanceFactor: 0 };
    const p = new UpstreamPool(options, [spec('a', 1), spec('b', 1), spec('c', 1)], {
      builder: workers,
      onBuildFailed: (error) => errors.push(error),
    });
    pools.push(p);
    expect(await p.settled(20_000)).toBe(true);
    const ok = routing(p);
    p.put('d', '127.0.0.1', 9, 256);
    await expect.poll(() => errors.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(errors[0]!.code).toBe('TETHER_ERR_CONFIG');
    expect(errors[0]!.message).toMatch(/at most 8388608/);
    expect(p.tableStatus().tableVersion).toBeLessThan(p.tableStatus().version);
    // The previous table goes on routing every key.
    expect(routing(p)).toEqual(ok);
    // A valid membership builds at once (no wait for the backoff).
    p.put('d', '127.0.0.1', 9, 1);
    expect(await p.settled(20_000)).toBe(true);
    const members = [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 1 },
      { name: 'c', weight: 1 },
      { name: 'd', weight: 1 },
    ];
    const table = buildTable('ring', members, { vnodes: 40_000 });
    expect(routing(p)).toEqual(KEYS.map((k) => table.members[table.primary(hashKey(k))]!.name));
  });

  it('settled() answers false on timeout and on close, and a closed pool ignores late builds', async () => {
    const gate = new GatedBuilder(new InlineTableBuilder());
    const p = pool(ring, ['a', 'b'], { builder: gate });
    expect(await p.settled(30)).toBe(false);
    const waiting = p.settled();
    p.close();
    expect(await waiting).toBe(false);
    gate.release(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(p.tableStatus().tableVersion).toBe(-1);
    expect(p.route('k', 1).candidates).toHaveLength(1);
  });

  it('recycles a retired table\'s arrays into later builds, but never those of a table it handed out', async () => {
    const builder = new CountingBuilder(workers);
    const p = pool(ring, names(300), { builder });
    await p.settled(10_000);
    const handedOut = p.table;
    const answers = KEYS.map((k) => handedOut.primary(hashKey(k)));
    for (let i = 0; i < 6; i++) {
      if (i % 2 === 0) p.drain('up-1');
      else p.undrain('up-1');
      await p.settled(10_000);
    }
    // Later builds were given spare buffers to write into...
    expect(builder.requests.slice(2).some((r) => (r.spare ?? []).length > 0)).toBe(true);
    // ...yet the table handed out still answers exactly as before.
    expect(KEYS.map((k) => handedOut.primary(hashKey(k)))).toEqual(answers);
    expect(routing(p)).toEqual(freshRouting('ring', asMembers(names(300))));
  });

  it('builds each listener\'s ring from its last one (one series key per pool), and still routes as a fresh build', async () => {
    const builder = new CountingBuilder(workers);
    const kinds: boolean[] = [];
    const p = pool(ring, names(400), { builder, onTableBuilt: (_seconds, incremental) => kinds.push(incremental) });
    const other = pool(ring, names(10, 'o-'), { builder });
    expect(await Promise.all([p.settled(10_000), other.settled(10_000)])).toEqual([true, true]);
    for (const change of [() => p.drain('up-0'), () => p.put('up-400', '127.0.0.1', 9), () => p.undrain('up-0'), () => p.put('up-9', '127.0.0.1', 9, 4)]) {
      change();
      expect(await p.settled(10_000)).toBe(true);
    }
    // The first build was whole, every one-upstream change after it derived.
    expect(kinds).toEqual([false, true, true, true, true]);
    expect(routing(p)).toEqual(freshRouting('ring', [...asMembers(names(401)).map((m) => (m.name === 'up-9' ? { ...m, weight: 4 } : m))]));
    const keys = new Set(builder.requests.map((r) => r.key));
    expect(keys.size).toBe(2);
    expect(new Set(builder.requests.filter((r) => r.members.length < 20).map((r) => r.key)).size).toBe(1);
  });

  it('after a random walk of drains, undrains, puts and removes, routes every key as a full build of the end membership, in workers and inline', async () => {
    for (const [label, inner] of [
      ['workers', workers],
      ['inline', new InlineTableBuilder()],
    ] as const) {
      const random = seededRandom(label === 'workers' ? 21 : 22);
      const builder = new CountingBuilder(inner);
      const kinds: boolean[] = [];
      // 600 x 160 points: one drain is patched, not merged (hashing/ring/build.ts).
      const p = pool(ring, names(600), { builder, onTableBuilt: (_seconds, incremental) => kinds.push(incremental) });
      expect(await p.settled(20_000)).toBe(true);
      // The membership the pool should end with: name -> weight, and which are drained.
      const weights = new Map(names(600).map((n) => [n, 1]));
      const drained = new Set<string>();
      const gone: string[] = [];
      let fresh = 0;
      const membership = (): Member[] => [...weights].filter(([name]) => !drained.has(name)).map(([name, weight]) => ({ name, weight }));
      const any = (from: Iterable<string>): string => {
        const list = [...from];
        return list[Math.floor(random() * list.length)]!;
      };
      // Per build request: how many upstreams left the routable set before it was sent.
      const leaves: number[] = [];
      const left = (): void => {
        const k = builder.requests.length;
        leaves[k] = (leaves[k] ?? 0) + 1;
      };
      for (let step = 0; step < 150; step++) {
        const r = random();
        if (r < 0.3) {
          const name = any(weights.keys());
          if (!drained.has(name)) left();
          p.drain(name);
          drained.add(name);
        } else if (r < 0.55 && drained.size > 0) {
          const name = any(drained);
          p.undrain(name);
          drained.delete(name);
        } else if (r < 0.7) {
          // A new upstream, or one removed earlier coming back (a new Upstream object).
          const name = gone.length > 0 && random() < 0.4 ? gone.splice(Math.floor(random() * gone.length), 1)[0]! : `new-${fresh++}`;
          const weight = 1 + Math.floor(random() * 3);
          p.put(name, '127.0.0.1', 9, weight);
          weights.set(name, weight);
        } else if (r < 0.8) {
          const name = any(weights.keys());
          const weight = 1 + Math.floor(random() * 3);
          p.put(name, '127.0.0.1', 9, weight);
          weights.set(name, weight);
        } else {
          const name = any(weights.keys());
          if (!drained.has(name)) left();
          p.remove(name);
          weights.delete(name);
          drained.delete(name);
          gone.push(name);
        }
        // Half the time the next change comes before this one's table: builds coalesce.
        if (random() < 0.5) {
          expect(await p.settled(20_000), `${label} step ${step}`).toBe(true);
          if (step % 3 === 0) expect(routing(p), `${label} step ${step}`).toEqual(freshRouting('ring', membership()));
        }
      }
      expect(await p.settled(20_000)).toBe(true);
      const end = membership();
      expect(routing(p), label).toEqual(freshRouting('ring', end));
      // Retries follow the fresh table's order too.
      const fresh4 = buildTable('ring', end, { vnodes: 160 });
      const out = new Uint32Array(4);
      for (const k of KEYS.slice(0, 300)) {
        const n = fresh4.order(hashKey(k), out);
        const expected = Array.from(out.subarray(0, n), (i) => fresh4.members[i]!.name);
        expect(p.route(k, 4).candidates.map((u) => u.name), `${label} ${k}`).toEqual(expected);
      }
      // Each list sent kept the order of the one before: a member changed index only
      // to fill the hole of one that left, or as one that left and came back (appended)
      // before the build: at most two per upstream that left since.
      for (let i = 1; i < builder.requests.length; i++) {
        const before = builder.requests[i - 1]!.members;
        const after = builder.requests[i]!.members;
        const moved = after.filter((m, j) => before.includes(m) && before.indexOf(m) !== j).length;
        expect(moved, `${label} build ${i}`).toBeLessThanOrEqual(2 * (leaves[i] ?? 0));
      }
      // Nearly every build after the first was derived from the one before.
      expect(kinds.slice(1).filter((incremental) => !incremental).length, label).toBeLessThanOrEqual(2);
    }
  });

  it('needs no rebuild for an address change, and one for a weight change', async () => {
    const builder = new CountingBuilder(workers);
    const p = pool(ring, ['a', 'b'], { builder });
    await p.settled(10_000);
    const n = builder.requests.length;
    p.put('a', '127.0.0.2', 10);
    expect(await p.settled(0)).toBe(true);
    expect(builder.requests.length).toBe(n);
    p.put('a', '127.0.0.2', 10, 3);
    expect(await p.settled(10_000)).toBe(true);
    expect(builder.requests.length).toBe(n + 1);
  });

  it('keeps bounded loads working on a stale table', async () => {
    const gate = new GatedBuilder(new InlineTableBuilder());
    const p = pool({ ...ring, balanceFactor: 1.25 }, names(4), { builder: gate });
    gate.release(true);
    await p.settled(5_000);
    gate.held = true;
    p.remove('up-0');
    // 300 connections, each held: none of the three left may exceed 1.25 x its share.
    for (let i = 0; i < 300; i++) {
      const [chosen] = p.route(`client-${i}`, 3).candidates;
      expect(chosen!.name).not.toBe('up-0');
      p.acquire(chosen!);
    }
    for (const u of p.list()) expect(u.active).toBeLessThanOrEqual(Math.ceil((1.25 * 300) / 3));
    gate.release(true);
  });
});
