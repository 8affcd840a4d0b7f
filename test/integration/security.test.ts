import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { keyHashForLog } from '../../src/log.js';
import { clientAddress, connectAndGreet, waitFor } from '../helpers/clients.js';
import { adminCall, CLI, spawnTether, type TetherProcess } from '../helpers/tether.js';
import { freePort, startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

/**
 * Issue 8, security: the admin API is on loopback unless told otherwise, and keys
 * and tokens never reach a log. (The token on every admin call: admin.test.ts.)
 */

let proc: TetherProcess | null = null;
let upstreams: TestUpstream[] = [];

afterEach(async () => {
  proc?.kill('SIGKILL');
  proc = null;
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

/** The listening TCP sockets a process holds, as "address:port" (from /proc/net/tcp{,6} and its fds). */
function listeningSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue; // 0A: LISTEN
      const [hex, portHex] = f[1]!.split(':') as [string, string];
      out.push(`${hexAddress(hex)}:${parseInt(portHex, 16)}`);
    }
  }
  return out;
}

/** /proc/net/tcp addresses are 32-bit words in host (little-endian) order. */
function hexAddress(hex: string): string {
  const words = hex.match(/.{8}/g)!.map((w) => Buffer.from(w, 'hex').reverse());
  const bytes = Buffer.concat(words);
  if (bytes.length === 4) return [...bytes].join('.');
  return new net.SocketAddress({ address: bytes.toString('hex').match(/.{4}/g)!.join(':'), family: 'ipv6' }).address;
}

describe('admin API address', () => {
  it('is 127.0.0.1:7001 when nothing sets it: in `tether check` and in the socket the process binds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tether-sec-'));
    const file = join(dir, 'tether.json');
    writeFileSync(file, JSON.stringify({ listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: 'a=127.0.0.1:1' }] }));
    for (const env of [{ TETHER_UPSTREAMS: 'a=127.0.0.1:1' }, { TETHER_CONFIG: file }]) {
      const check = spawnSync(process.execPath, [CLI, 'check'], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
      expect(check.status).toBe(0);
      expect((JSON.parse(check.stdout) as { admin: string }).admin).toBe('127.0.0.1:7001');
      expect(check.stderr).toBe('');
    }

    // Start it with the default: the one fixed port in the suite, so wait out another
    // process that holds 7001 for a while (a demo, another checkout's test run).
    upstreams = await startUpstreams(['a']);
    const env = { TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_LISTEN: '127.0.0.1:0', TETHER_HEALTH: 'off' };
    let admin: Record<string, unknown> | null = null;
    const deadline = Date.now() + 30_000;
    while (admin === null) {
      proc = spawnTether(env);
      const started = proc;
      admin = await Promise.race([started.waitForLog((l) => l.msg === 'admin API listening', 15_000), started.exited.then(() => null)]);
      if (admin !== null) break;
      if (!/7001/.test(started.stderr) || Date.now() > deadline) {
        throw new Error(`tether with the default admin address did not start: ${started.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(admin.address).toBe('127.0.0.1:7001');
    const listening = listeningSockets(proc!.pid);
    expect(listening).toContain('127.0.0.1:7001');
    // Nothing of this process listens on a wildcard or a non-loopback address.
    for (const address of listening) expect(address, address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await adminCall('http://127.0.0.1:7001', 'GET', '/healthz')).status).toBe(200);
  });
});

/**
 * Something that must never be logged. `allowedIn` lists the log fields that may
 * carry it anyway: a `source-ip` key is the client's address, and an access line's
 * `client` field is the connection's endpoint (as HAProxy logs %ci); the key itself
 * appears as `keyHash`. Keys of http mode (session ids, cookies, tokens) join this
 * list with no such field.
 */
interface Secret {
  readonly what: string;
  readonly value: string;
  /** It was a routing key: its keyHashForLog must appear in an access line. */
  readonly key: boolean;
  readonly allowedIn?: readonly string[];
}

describe('logs', () => {
  it('never carry a key or a token, at TETHER_LOG_LEVEL=trace, while keys show as their hashes', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    const dead = await freePort();
    const token = 'tok-9f8e7d6c5b4a39281706';
    const dir = mkdtempSync(join(tmpdir(), 'tether-sec-'));
    const file = join(dir, 'tether.json');
    const config = (adminToken: unknown): string =>
      JSON.stringify({
        admin: '127.0.0.1:0',
        adminToken,
        logLevel: 'trace',
        health: 'tcp',
        healthIntervalMs: 100,
        listeners: [
          { name: 'plain', listen: '127.0.0.1:0', upstreams: `${upstreamList(upstreams)},dead=127.0.0.1:${dead}` },
          { name: 'proxied', listen: '127.0.0.1:0', upstreams: upstreamList(upstreams), acceptProxy: 'any', trustedProxies: '127.0.0.1/32' },
        ],
      });
    writeFileSync(file, config(token));
    proc = spawnTether({ TETHER_CONFIG: file, TETHER_LOG_LEVEL: 'trace' });
    const p = proc;
    await p.waitForLog((l) => l.msg === 'admin API listening');
    const portOf = (name: string): number => Number(String(p.logs.find((l) => l.msg === 'listening' && l.listener === name)!.address).split(':').pop());
    const admin = `http://${String(p.logs.find((l) => l.msg === 'admin API listening')!.address)}`;
    await waitFor(() => p.logs.some((l) => l.change === 'down' && l.upstream === 'dead'), 10_000, 'the dead upstream to be marked down (health logs at trace)');

    const secrets: Secret[] = [{ what: 'admin token', value: token, key: false }];
    // tcp mode: source-ip keys, from the socket ...
    const direct = Array.from({ length: 12 }, (_, i) => clientAddress(1000 + i));
    for (const from of direct) {
      const g = await connectAndGreet(portOf('plain'), from);
      expect(g.upstream).not.toBeNull();
      g.socket.destroy();
      secrets.push({ what: 'source-ip key', value: from, key: true, allowedIn: ['client'] });
    }
    // ... and from PROXY headers, IPv4 and IPv6.
    for (const fake of ['203.0.113.41', '198.51.100.42', '2001:db8:4242::17']) {
      const socket = net.connect({ host: '127.0.0.1', port: portOf('proxied') });
      socket.write(`PROXY ${fake.includes(':') ? 'TCP6' : 'TCP4'} ${fake} ${fake.includes(':') ? '::1' : '127.0.0.1'} 40000 7000\r\n`);
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.destroy();
      secrets.push({ what: 'PROXY source-ip key', value: fake, key: true, allowedIn: ['client'] });
    }
    // Admin calls that carry secrets: the token (header and the stats page's ?token=),
    // wrong tokens, and a key asked about by /route.
    const asked = 'sess-1f2e3d4c5b6a7988';
    secrets.push({ what: 'a key given to /route', value: asked, key: false });
    const wrong = 'wrong-7a6b5c4d3e2f1';
    secrets.push({ what: 'a wrong token', value: wrong, key: false });
    expect((await adminCall(admin, 'GET', '/upstreams', undefined, token)).status).toBe(200);
    expect((await adminCall(admin, 'GET', `/route?key=${asked}`, undefined, token)).status).toBe(200);
    expect((await fetch(`${admin}/?token=${token}`)).status).toBe(200);
    expect((await fetch(`${admin}/stats.json?token=${token}`)).status).toBe(200);
    expect((await adminCall(admin, 'DELETE', '/upstreams/a', undefined, wrong)).status).toBe(401);
    expect((await fetch(`${admin}/?token=${wrong}`)).status).toBe(401);
    expect((await adminCall(admin, 'PUT', '/upstreams/x', { address: `127.0.0.1:${dead}` }, token)).status).toBe(201);

    // A reload whose token is of the wrong type (a number) is rejected, in the log,
    // without the value; then a good one.
    const numeric = '424242424242';
    secrets.push({ what: 'a token given as a JSON number', value: numeric, key: false });
    writeFileSync(file, config(Number(numeric)));
    p.kill('SIGHUP');
    await p.waitForLog((l) => l.msg === 'reload rejected; keeping the running configuration');
    writeFileSync(file, config(token));
    p.kill('SIGHUP');
    await p.waitForLog((l) => l.msg === 'configuration reloaded');
    await waitFor(() => p.logs.filter((l) => l.component === 'access').length >= direct.length + 3, 10_000, 'every access line');

    // Trace level really was on: the health checker's debug lines are there.
    expect(p.logs.some((l) => l.msg === 'health check failed')).toBe(true);
    const raw = p.logs.map((l) => JSON.stringify(l));
    for (const secret of secrets) {
      const allowed = new Set(secret.allowedIn ?? []);
      const leaks = p.logs
        .map((l) => JSON.stringify(Object.fromEntries(Object.entries(l).filter(([k]) => !allowed.has(k)))))
        .filter((line) => line.includes(secret.value));
      expect(leaks, `${secret.what} ${secret.value} in the log`).toEqual([]);
      expect(p.stderr, `${secret.what} on stderr`).not.toContain(secret.value);
      if (allowed.size === 0) expect(raw.some((line) => line.includes(secret.value)), `${secret.what} anywhere`).toBe(false);
      if (secret.key) {
        const hash = keyHashForLog(secret.value);
        expect(p.logs.some((l) => l.component === 'access' && l.keyHash === hash), `${secret.what} ${secret.value} as keyHash ${hash}`).toBe(true);
      }
    }
  });
});
