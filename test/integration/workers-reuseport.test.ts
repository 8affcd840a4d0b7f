/**
 * TETHER_WORKERS on a Node with `reusePort` (22.12 and 23.1 on): each worker binds a
 * listening socket of its own to the port and the kernel hashes connections over
 * them. tether runs under the Node test/setup/node-reuseport.ts provides (this one
 * where it has reusePort, else an official Node 22 build); under Node 20 workers
 * share one socket, which workers.test.ts covers.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { clientAddress, connectAndGreet, waitFor } from '../helpers/clients.js';
import { CLI, spawnedAddresses, watchTether, type TetherProcess } from '../helpers/tether.js';
import { workersOf } from '../helpers/instances.js';
import { freePort, startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

const NODE = inject('reusePortNode');
if (NODE === null) console.warn('workers-reuseport.test.ts: skipped off linux-x64, where tether does not use SO_REUSEPORT');

const procs: TetherProcess[] = [];
let upstreams: TestUpstream[] = [];
afterAll(async () => {
  for (const p of procs) {
    p.kill('SIGTERM');
    await p.exited;
  }
  await Promise.all(upstreams.map((u) => u.close()));
});

function start(node: string, env: Record<string, string>): TetherProcess {
  const proc = watchTether(
    spawn(node, [CLI], {
      env: { PATH: process.env.PATH ?? '', TETHER_LOG_LEVEL: 'info', TETHER_ADMIN: '127.0.0.1:0', TETHER_HEALTH: 'off', TETHER_ACCESS_LOG: 'off', TETHER_DRAIN_TIMEOUT_MS: '500', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  procs.push(proc);
  return proc;
}

/** Sockets in LISTEN on 127.0.0.1:port (/proc/net/tcp). */
function listeningSockets(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((row) => {
      const fields = row.trim().split(/\s+/);
      return fields[1] === local && fields[3] === '0A';
    }).length;
}

/** Connect once from each address (20 at a time); the upstream each reached. */
async function reach(port: number, addresses: readonly string[]): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < addresses.length) {
        const address = addresses[next++]!;
        const { upstream, socket } = await connectAndGreet(port, address);
        socket.destroy();
        out.set(address, upstream);
      }
    }),
  );
  return out;
}

/**
 * The workers' 'worker listening' lines, once there are `count`. Each worker logs
 * through its own stdout, so its line may come after the control plane's 'listening'.
 */
async function listeningLines(proc: TetherProcess, count: number): Promise<Record<string, unknown>[]> {
  const lines = (): Record<string, unknown>[] => proc.logs.filter((l) => l.msg === 'worker listening');
  await waitFor(() => lines().length >= count, 5_000, `${count} 'worker listening' lines`);
  expect(lines()).toHaveLength(count);
  return lines();
}

describe.runIf(NODE !== null)('TETHER_WORKERS=3 where Node has reusePort', () => {
  it('binds a socket per worker to a fixed port; the kernel spreads connections evenly; a replaced worker joins', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c', 'd']);
    const port = await freePort();
    const proc = start(NODE!, { TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_WORKERS: '3', TETHER_LISTEN: `127.0.0.1:${port}` });
    const { admin } = await spawnedAddresses(proc);
    const lines = await listeningLines(proc, 3);
    for (const line of lines) expect(line.listenSocket).toBe('reuseport');
    for (const line of lines) expect(line.sockets).toBe('tcp handles');
    // One listening socket per worker on the port, as the kernel lists them.
    expect(listeningSockets(port)).toBe(3);

    const addresses = Array.from({ length: 900 }, (_, i) => clientAddress(i));
    const first = await reach(port, addresses);
    expect([...first.values()].every((u) => u !== null)).toBe(true);
    const landed = (await workersOf(admin)).filter((w) => w.id > 0).map((w) => w.total);
    console.log(`reusePort, 3 workers: 900 connections landed ${landed.join(' / ')}`);
    expect(landed.reduce((n, t) => n + t, 0)).toBe(900);
    // A hash over 900 four-tuples: each socket within 25% of an even third (5 standard
    // deviations). The shared socket's wake-ups are not so even (workers.test.ts).
    for (const total of landed) expect(Math.abs(total - 300)).toBeLessThanOrEqual(75);
    // Whichever worker's socket took it, an address reaches one upstream.
    const some = addresses.slice(0, 300);
    expect(await reach(port, some)).toEqual(new Map(some.map((a) => [a, first.get(a)!])));

    // kill -9 of a worker: its replacement binds its own socket and takes its share.
    const victim = (await workersOf(admin)).find((w) => w.id === 2)!;
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(async () => (await workersOf(admin)).some((w) => w.id === 2 && w.pid !== victim.pid && w.state === 'running'), 10_000, 'the replacement');
    const before = (await workersOf(admin)).find((w) => w.id === 2)!.total;
    await reach(port, addresses.slice(0, 150));
    const after = (await workersOf(admin)).find((w) => w.id === 2)!.total;
    expect(listeningSockets(port)).toBe(3);
    console.log(`reusePort: the replacement of worker 2 accepted ${after - before} of 150`);
    expect(after - before).toBeGreaterThan(20);
  });

  it('with port 0 the workers share one socket (each would bind a port of its own)', async () => {
    if (upstreams.length === 0) upstreams = await startUpstreams(['a']);
    const proc = start(NODE!, { TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_WORKERS: '2', TETHER_LISTEN: '127.0.0.1:0' });
    const { port } = await spawnedAddresses(proc);
    const lines = await listeningLines(proc, 2);
    expect(lines.map((l) => l.listenSocket)).toEqual(['shared', 'shared']);
    expect(new Set(lines.map((l) => l.address))).toEqual(new Set([`127.0.0.1:${port}`]));
    expect(listeningSockets(port)).toBe(1);
    expect((await connectAndGreet(port)).upstream).not.toBeNull();
  });
});
