import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, connectAndGreet, mapAddresses, waitFor } from '../helpers/clients.js';
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

describe('bounded loads (TETHER_BALANCE_FACTOR)', () => {
  async function holdConnections(port: number): Promise<void> {
    // Half the connections come from one address (a NAT), half from distinct ones.
    const sockets = [];
    for (let i = 0; i < 150; i++) sockets.push((await connectAndGreet(port, '127.0.0.2')).socket);
    for (let i = 0; i < 150; i++) sockets.push((await connectAndGreet(port, clientAddress(i + 1))).socket);
    held.push(...sockets);
  }
  const held: import('node:net').Socket[] = [];
  afterEach(() => {
    for (const s of held.splice(0)) s.destroy();
  });

  it('keeps every upstream within 1.25 x the mean of active connections', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off', TETHER_BALANCE_FACTOR: '1.25' });
    await holdConnections(tether.port);
    await waitFor(() => upstreams.reduce((n, u) => n + u.sockets.size, 0) === 300, 5_000, 'all connections open');
    const loads = upstreams.map((u) => u.sockets.size);
    const mean = 300 / 3;
    for (const load of loads) expect(load).toBeLessThanOrEqual(1.25 * mean);
    const { body } = await adminCall(tether.admin, 'GET', '/upstreams');
    expect((body as { active: number }[]).reduce((n, u) => n + u.active, 0)).toBe(300);
  });

  it('without it, the shared address piles onto one upstream (the test has teeth)', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    tether = await startTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_HEALTH: 'off' });
    await holdConnections(tether.port);
    await waitFor(() => upstreams.reduce((n, u) => n + u.sockets.size, 0) === 300, 5_000, 'all connections open');
    expect(Math.max(...upstreams.map((u) => u.sockets.size))).toBeGreaterThan(1.25 * 100);
  });
});
