import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, connectAndGreet, mapAddresses, waitFor } from '../helpers/clients.js';
import { spawnUpstream, type UpstreamProcess } from '../helpers/processes.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';

let tether: RunningTether | null = null;
let procs: UpstreamProcess[] = [];

afterEach(async () => {
  await tether?.close();
  tether = null;
  await Promise.all(procs.map((p) => p.kill()));
  procs = [];
});

describe('failover', () => {
  it('sends a killed upstream\'s keys to the next upstream within fall x interval, and no client hangs', async () => {
    procs = await Promise.all(['a', 'b', 'c'].map((n) => spawnUpstream(n)));
    const intervalMs = 200;
    const fall = 3;
    const connectTimeoutMs = 1_000;
    tether = await startTether({
      TETHER_UPSTREAMS: procs.map((p) => `${p.name}=${p.address}`).join(','),
      TETHER_HEALTH: 'tcp',
      TETHER_HEALTH_INTERVAL_MS: String(intervalMs),
      TETHER_HEALTH_FALL: String(fall),
      TETHER_CONNECT_TIMEOUT_MS: String(connectTimeoutMs),
    });
    const clients = Array.from({ length: 60 }, (_, i) => clientAddress(i));
    const before = await mapAddresses(tether.port, clients);
    const victim = 'b';
    const held = clients.filter((a) => before.get(a) === victim);
    expect(held.length).toBeGreaterThan(5);
    // Where each of the victim's keys should go next: its second candidate now.
    const next = new Map<string, string>();
    for (const a of held) {
      const { body } = await adminCall(tether.admin, 'GET', `/route?key=${a}`);
      next.set(a, (body as { candidates: string[] }).candidates[1]!);
    }

    const killedAt = Date.now();
    await procs[1]!.kill('SIGKILL');

    // While the monitor has not yet decided, every connection is still answered
    // (a refused connect moves to the next upstream) or closed, within the timeout.
    const during = await Promise.all(held.map((a) => connectAndGreet(tether!.port, a, connectTimeoutMs + 500)));
    for (const g of during) {
      g.socket.destroy();
      expect(g.upstream).not.toBe(victim);
    }

    await waitFor(
      async () => {
        const { body } = await adminCall(tether!.admin, 'GET', '/upstreams');
        return (body as { name: string; state: string }[]).find((u) => u.name === victim)?.state === 'down';
      },
      fall * intervalMs + 2_000,
      'the killed upstream to be marked down',
    );
    // Failed connects count as evidence, so it goes down within fall x interval (plus a check's timeout).
    expect(Date.now() - killedAt).toBeLessThanOrEqual(fall * intervalMs + 1_000 + 500);

    const after = await mapAddresses(tether.port, clients);
    for (const a of clients) {
      if (before.get(a) === victim) expect(after.get(a), a).toBe(next.get(a));
      else expect(after.get(a), a).toBe(before.get(a));
    }
  });

  it('tries the next upstream in hash order when a connect is refused', async () => {
    procs = await Promise.all(['a', 'b'].map((n) => spawnUpstream(n)));
    tether = await startTether({
      TETHER_UPSTREAMS: `${procs.map((p) => `${p.name}=${p.address}`).join(',')},dead=127.0.0.1:1`,
      TETHER_HEALTH: 'off',
      TETHER_RETRIES: '2',
    });
    const clients = Array.from({ length: 40 }, (_, i) => clientAddress(i));
    const served = await mapAddresses(tether.port, clients);
    for (const a of clients) expect(['a', 'b']).toContain(served.get(a));
  });

  it('closes the connection when no upstream answers (retries exhausted)', async () => {
    tether = await startTether({ TETHER_UPSTREAMS: 'dead1=127.0.0.1:1,dead2=127.0.0.1:2', TETHER_HEALTH: 'off', TETHER_RETRIES: '1' });
    const started = Date.now();
    const g = await connectAndGreet(tether.port, '127.0.0.2', 3_000);
    expect(g.upstream).toBeNull();
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
