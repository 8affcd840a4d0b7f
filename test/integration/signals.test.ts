import { writeFileSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, closed, connectAndGreet, waitFor } from '../helpers/clients.js';
import { adminCall, spawnTether, spawnedAddresses, type TetherProcess } from '../helpers/tether.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

let proc: TetherProcess | null = null;
let upstreams: TestUpstream[] = [];

afterEach(async () => {
  proc?.kill('SIGKILL');
  proc = null;
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

function echo(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (chunk: Buffer): void => {
      got += chunk.toString();
      if (got.length >= text.length) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before the echo')));
    socket.write(text);
  });
}

describe('SIGTERM', () => {
  it('refuses new connections at once, lets open ones finish, then exits 0', async () => {
    upstreams = await startUpstreams(['a']);
    proc = spawnTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_DRAIN_TIMEOUT_MS: '20000', TETHER_HEALTH: 'off' });
    const { port } = await spawnedAddresses(proc);
    const open = await connectAndGreet(port, '127.0.0.2');
    expect(open.upstream).toBe('a');
    const signalledAt = Date.now();
    proc.kill('SIGTERM');
    await proc.waitForLog((l) => l.msg === 'shutting down: draining connections');
    // New connections are refused within one second.
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port });
          s.once('error', () => resolve(true));
          s.once('connect', () => (s.destroy(), resolve(false)));
        }),
      1_000,
      'new connections to be refused',
    );
    expect(Date.now() - signalledAt).toBeLessThan(1_500);
    // The open connection still works.
    expect(await echo(open.socket, 'still here')).toBe('still here');
    open.socket.end();
    expect(await proc.exited).toBe(0);
  });

  it('closes what is still open at TETHER_DRAIN_TIMEOUT_MS and exits 0', async () => {
    upstreams = await startUpstreams(['a']);
    proc = spawnTether({ TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LISTEN: '127.0.0.1:0', TETHER_ADMIN: '127.0.0.1:0', TETHER_DRAIN_TIMEOUT_MS: '500', TETHER_HEALTH: 'off' });
    const { port } = await spawnedAddresses(proc);
    const open = await connectAndGreet(port, '127.0.0.2');
    const started = Date.now();
    proc.kill('SIGTERM');
    await closed(open.socket);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(await proc.exited).toBe(0);
  });
});

describe('SIGHUP', () => {
  it('reloads the config file: upstream changes apply and no connection drops', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    const dir = mkdtempSync(join(tmpdir(), 'tether-hup-'));
    const file = join(dir, 'tether.json');
    const write = (names: string[]): void =>
      writeFileSync(
        file,
        JSON.stringify({
          admin: '127.0.0.1:0',
          listeners: [{ name: 'main', listen: '127.0.0.1:0', health: 'off', upstreams: upstreams.filter((u) => names.includes(u.name)).map((u) => `${u.name}=${u.address}`) }],
        }),
      );
    write(['a', 'b']);
    proc = spawnTether({ TETHER_CONFIG: file });
    const { port, admin } = await spawnedAddresses(proc);
    const held = await Promise.all(Array.from({ length: 30 }, (_, i) => connectAndGreet(port, clientAddress(i))));
    expect(new Set(held.map((g) => g.upstream))).toEqual(new Set(['a', 'b']));
    let drops = 0;
    for (const g of held) g.socket.on('close', () => drops++);

    write(['a', 'c']); // b removed, c added
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l.msg === 'configuration reloaded');
    const { body } = await adminCall(admin, 'GET', '/upstreams');
    expect((body as { name: string }[]).map((u) => u.name).sort()).toEqual(['a', 'c']);
    // Every held connection, b's included, still relays.
    for (const g of held) expect(await echo(g.socket, 'ping')).toBe('ping');
    expect(drops).toBe(0);
    const fresh = await Promise.all(Array.from({ length: 30 }, (_, i) => connectAndGreet(port, clientAddress(i))));
    expect(new Set(fresh.map((g) => g.upstream))).toEqual(new Set(['a', 'c']));
    for (const g of [...held, ...fresh]) g.socket.destroy();

    // A broken file on reload is rejected and the running configuration kept.
    writeFileSync(file, '{ not json');
    proc.kill('SIGHUP');
    await proc.waitForLog((l) => l.msg === 'reload rejected; keeping the running configuration');
    expect((await connectAndGreet(port, '127.0.0.2')).upstream).toMatch(/^[ac]$/);
  });
});
