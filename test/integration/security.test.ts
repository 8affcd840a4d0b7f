import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { keyHashForLog } from '../../src/log.js';
import { clientAddress, connectAndGreet, waitFor } from '../helpers/clients.js';
import { startHttpUpstream, type HttpUpstream } from '../helpers/http.js';
import { adminCall, CLI, spawnTether, type TetherProcess } from '../helpers/tether.js';
import { freePort, startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';

/**
 * Issue 8, security: the admin API is on loopback unless told otherwise, and keys
 * and tokens never reach a log. (The token on every admin call: admin.test.ts.)
 */

let proc: TetherProcess | null = null;
let upstreams: TestUpstream[] = [];
let httpUpstreams: HttpUpstream[] = [];

afterEach(async () => {
  proc?.kill('SIGKILL');
  proc = null;
  await Promise.all([...upstreams, ...httpUpstreams].map((u) => u.close()));
  upstreams = [];
  httpUpstreams = [];
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
 * appears as `keyHash`. Keys of http mode (session ids, cookies, tokens) are on this
 * list with no such field.
 */
interface Secret {
  readonly what: string;
  readonly value: string;
  /** It was a routing key: its keyHashForLog must appear in an access line. */
  readonly key: boolean;
  /** A learned key: the access line with its keyHash says `via: "learned"`. */
  readonly learned?: boolean;
  readonly allowedIn?: readonly string[];
}

describe('logs', () => {
  it('never carry a key or a token, at TETHER_LOG_LEVEL=trace, while keys show as their hashes', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    httpUpstreams = await Promise.all(['h1', 'h2', 'h3'].map((name) => startHttpUpstream(name)));
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
          {
            // http mode: keys from a header, a cookie, the query and the path, and pins
            // learned from a Set-Cookie and from a response header.
            name: 'web',
            listen: '127.0.0.1:0',
            mode: 'http',
            upstreams: httpUpstreams.map((u) => `${u.name}=${u.address}`),
            key: ['header:x-session', 'cookie:sid', 'query:token', 'path:^/files/([^/?]+)'],
            learn: ['set-cookie:sid', 'header:x-upload=(.+)'],
          },
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

    // http mode: a key from each source, on requests and on a WebSocket upgrade.
    const web = `http://127.0.0.1:${portOf('web')}`;
    const viaHeader = 'hdr-5e55-71a4-c0de-0001';
    const viaCookie = 'ck-5e55-71a4-c0de-0002';
    const viaQuery = 'qry-5e55-71a4-c0de-0003';
    const viaPath = 'pth-5e55-71a4-c0de-0004';
    const viaUpgrade = 'ws-5e55-71a4-c0de-0005';
    expect((await fetch(`${web}/a`, { headers: { 'x-session': viaHeader } })).status).toBe(200);
    expect((await fetch(`${web}/b`, { headers: { cookie: `theme=dark; sid=${viaCookie}` } })).status).toBe(200);
    expect((await fetch(`${web}/c?x=1&token=${viaQuery}`)).status).toBe(200);
    expect((await fetch(`${web}/files/${viaPath}/part?x=1`, { method: 'PATCH', body: 'chunk' })).status).toBe(200);
    const ws = new WebSocket(`ws://127.0.0.1:${portOf('web')}/ws?token=${viaUpgrade}`);
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve());
      ws.once('error', reject);
    });
    ws.close();
    // Learned pins: a session id from a Set-Cookie, an upload id from a response header;
    // each then used as a key (cookie, path) on the next request.
    const learnedCookie = 'lck-5e55-71a4-c0de-0006';
    const learnedUpload = 'lup-5e55-71a4-c0de-0007';
    const login = await fetch(`${web}/login?sid=${learnedCookie}`);
    expect(login.headers.get('set-cookie')).toContain(learnedCookie);
    expect((await fetch(`${web}/next`, { headers: { cookie: `sid=${learnedCookie}` } })).status).toBe(200);
    const created = await fetch(`${web}/create?id=${learnedUpload}`, { method: 'POST', body: 'x' });
    expect(created.headers.get('x-upload')).toBe(learnedUpload);
    expect((await fetch(`${web}/files/${learnedUpload}`, { method: 'PATCH', body: 'chunk' })).status).toBe(200);
    // And a head tether refuses (400), with a key in it.
    const refused = 'bad-5e55-71a4-c0de-0008';
    const bad = net.connect({ host: '127.0.0.1', port: portOf('web') });
    bad.write(`GET /files/${refused} HTTP/1.1\r\nHost: x\r\nX-Session: ${refused}\r\nBad Header: ${refused}\r\n\r\n`);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      bad.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      bad.on('close', () => resolve(text));
      bad.on('error', () => {});
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    secrets.push(
      { what: 'http key from a header', value: viaHeader, key: true },
      { what: 'http key from a cookie', value: viaCookie, key: true },
      { what: 'http key from the query', value: viaQuery, key: true },
      { what: 'http key from the path', value: viaPath, key: true },
      { what: 'http key of a WebSocket upgrade', value: viaUpgrade, key: true },
      { what: 'a session id learned from Set-Cookie', value: learnedCookie, key: true, learned: true },
      { what: 'an upload id learned from a response header', value: learnedUpload, key: true, learned: true },
      { what: 'a key in a refused head', value: refused, key: false },
    );
    await waitFor(
      () => secrets.filter((s) => s.key).every((s) => p.logs.some((l) => l.component === 'access' && l.keyHash === keyHashForLog(s.value))),
      10_000,
      'an access line for every key',
    );
    await waitFor(() => p.logs.some((l) => l.component === 'access' && l.listener === 'web' && l.outcome === 'bad_request'), 10_000, 'the refused head in the access log');

    // Trace level really was on: the health checker's and the learner's debug lines are there.
    expect(p.logs.some((l) => l.msg === 'health check failed')).toBe(true);
    expect(p.logs.filter((l) => l.msg === 'learned pins').length).toBeGreaterThanOrEqual(2);
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
        if (secret.learned) expect(p.logs.some((l) => l.component === 'access' && l.keyHash === hash && l.via === 'learned'), `${secret.what} routed via its pin`).toBe(true);
      }
    }
  });
});
