import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, mapAddresses, waitFor } from '../helpers/clients.js';
import { closeAll, openConnections, type HeldConnection } from '../helpers/load.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

let tether: RunningTether | null = null;
let upstreams: TestUpstream[] = [];

afterEach(async () => {
  await tether?.close();
  tether = null;
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

const addresses = (n: number): string[] => Array.from({ length: n }, (_, i) => clientAddress(i));

describe('source-ip affinity (tcp mode)', () => {
  it('sends every connection of an address to one upstream, and spreads addresses', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const clients = addresses(100);
    const rounds = [];
    for (let r = 0; r < 3; r++) rounds.push(await mapAddresses(tether.port, clients));
    for (const address of clients) {
      const first = rounds[0]!.get(address);
      expect(first, address).not.toBeNull();
      expect(rounds[1]!.get(address), address).toBe(first);
      expect(rounds[2]!.get(address), address).toBe(first);
    }
    const share = new Map<string, number>();
    for (const name of rounds[0]!.values()) share.set(name!, (share.get(name!) ?? 0) + 1);
    expect([...share.keys()].sort()).toEqual(['a', 'b', 'c']);
    for (const [name, count] of share) {
      expect(count, `share of ${name}`).toBeGreaterThanOrEqual(15);
      expect(count, `share of ${name}`).toBeLessThanOrEqual(55);
    }
    // /route agrees with where connections went.
    for (const address of clients.slice(0, 20)) {
      const { body } = await adminCall(tether.admin, 'GET', `/route?key=${address}`);
      expect((body as { upstream: string }).upstream).toBe(rounds[0]!.get(address));
    }
  });

  for (const hash of ['ring', 'maglev', 'rendezvous'] as const) {
    it(`${hash}: removing an upstream moves exactly its addresses; adding it back restores the map`, async () => {
      upstreams = await startUpstreams(['u1', 'u2', 'u3', 'u4', 'u5']);
      tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_HASH: hash });
      const clients = addresses(200);
      const before = await mapAddresses(tether.port, clients);
      const victim = 'u3';
      const held = clients.filter((a) => before.get(a) === victim);
      expect(held.length).toBeGreaterThan(10);

      expect((await adminCall(tether.admin, 'DELETE', `/upstreams/${victim}`)).status).toBe(200);
      const after = await mapAddresses(tether.port, clients);
      const moved = clients.filter((a) => after.get(a) !== before.get(a));
      if (hash === 'maglev') {
        // Maglev trades a little extra movement for near-perfect balance (paper, sec. 3.4).
        for (const a of held) expect(moved).toContain(a);
        expect(moved.length - held.length).toBeLessThanOrEqual(Math.ceil(clients.length * 0.03));
      } else {
        expect(moved.sort()).toEqual([...held].sort());
      }
      for (const a of clients) expect(after.get(a)).not.toBe(victim);

      const victimUpstream = upstreams.find((u) => u.name === victim)!;
      const put = await adminCall(tether.admin, 'PUT', `/upstreams/${victim}`, { address: victimUpstream.address });
      expect(put.status).toBe(201);
      const restored = await mapAddresses(tether.port, clients);
      for (const a of clients) expect(restored.get(a), a).toBe(before.get(a));
    });
  }

  it('keeps the mapping when the upstream list is reordered or an address changes', async () => {
    upstreams = await startUpstreams(['x', 'y', 'z']);
    const clients = addresses(60);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const first = await mapAddresses(tether.port, clients);
    await tether.close();
    // Same names, reversed order: the same addresses reach the same names.
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList([...upstreams].reverse()), TETHER_HEALTH: 'off' });
    const second = await mapAddresses(tether.port, clients);
    for (const a of clients) expect(second.get(a)).toBe(first.get(a));
  });
});

describe('hot keys: bounded loads (TETHER_BALANCE_FACTOR)', () => {
  // Half the connections come from one address (a NAT), interleaved with the other
  // half from distinct addresses, as they would arrive. 1,000 over 5 upstreams: a
  // mean of 200, so 1.25 x the mean is a whole 250.
  const TOTAL = 1_000;
  const NAMES = ['a', 'b', 'c', 'd', 'e'];
  const NAT = '127.0.0.2';
  const held: HeldConnection[] = [];
  afterEach(async () => {
    await closeAll(held.splice(0).map((h) => h.socket));
  });

  async function actives(): Promise<number[]> {
    const { body } = await adminCall(tether!.admin, 'GET', '/upstreams');
    return (body as { active: number }[]).map((u) => u.active);
  }

  /** Open TOTAL connections in five waves; after each, the loads /upstreams reports. */
  async function ramp(): Promise<number[][]> {
    const waves: number[][] = [];
    const wave = TOTAL / 5;
    for (let w = 0; w < 5; w++) {
      const base = w * wave;
      held.push(...(await openConnections(tether!.port, wave, { address: (i) => ((base + i) % 2 === 0 ? NAT : clientAddress(base + i + 1)), concurrency: 20 })));
      await waitFor(async () => (await actives()).reduce((n, a) => n + a, 0) === base + wave, 5_000, `${base + wave} active connections`);
      waves.push(await actives());
    }
    // The upstreams agree with what tether reports.
    const atUpstreams = upstreams.map((u) => u.sockets.size);
    expect(atUpstreams).toEqual(waves[waves.length - 1]);
    return waves;
  }

  const ratio = (loads: number[]): number => Math.max(...loads) / (loads.reduce((n, a) => n + a, 0) / loads.length);

  it('with 1.25, keeps every upstream at or under 1.25 x the mean of active connections, all the way up', async () => {
    upstreams = await startUpstreams(NAMES);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_BALANCE_FACTOR: '1.25' });
    const waves = await ramp();
    for (const loads of waves) {
      const total = loads.reduce((n, a) => n + a, 0);
      // The cap is ceil(c x (total + 1) / N) as each connection arrives (routing/bounded.ts).
      for (const load of loads) expect(load).toBeLessThanOrEqual(Math.ceil((1.25 * total) / loads.length));
    }
    const final = waves[waves.length - 1]!;
    for (const load of final) expect(load).toBeLessThanOrEqual(1.25 * (TOTAL / NAMES.length));
    // The NAT's connections were spread, not refused: each upstream took its share.
    expect(Math.min(...final)).toBeGreaterThan(0);
    console.log(`hot keys with TETHER_BALANCE_FACTOR=1.25: loads ${final.join('/')}, fullest/mean ${ratio(final).toFixed(2)}`);
  });

  it('without it, the NAT piles onto one upstream (the imbalance the factor prevents)', async () => {
    upstreams = await startUpstreams(NAMES);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    const final = (await ramp()).at(-1)!;
    // The NAT's 500 alone are 2.5 x the mean.
    expect(Math.max(...final)).toBeGreaterThanOrEqual(TOTAL / 2);
    expect(ratio(final)).toBeGreaterThan(1.25 * 2);
    console.log(`hot keys without a balance factor: loads ${final.join('/')}, fullest/mean ${ratio(final).toFixed(2)}`);
  });
});
