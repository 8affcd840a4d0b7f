import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeHasReusePort } from '../../src/net/reuse-port.js';
import { CLI } from '../helpers/tether.js';

function run(env: Record<string, string>, args: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'tether-cli-'));
const notJson = join(dir, 'broken.json');
writeFileSync(notJson, '{ "listeners": [ \n oops ] }');

describe('bad settings exit 2 with one line naming the variable', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['an upstream without a port', { TETHER_UPSTREAMS: 'db1' }, /^tether: TETHER_UPSTREAMS: "db1" is not \[name=\]host:port\[\*weight\]$/],
    ['an unknown hash', { TETHER_UPSTREAMS: '127.0.0.1:5432', TETHER_HASH: 'nope' }, /^tether: TETHER_HASH: "nope" is not .*ring.*maglev.*rendezvous.*modulo/],
    ['a port out of range', { TETHER_UPSTREAMS: '127.0.0.1:5432', TETHER_LISTEN: '1.2.3.4:99999' }, /^tether: TETHER_LISTEN: "1\.2\.3\.4:99999" is not /],
    ['a config file that is not JSON', { TETHER_CONFIG: notJson }, /^tether: TETHER_CONFIG: .*JSON/],
    ['no upstreams at all', {}, /^tether: TETHER_UPSTREAMS: /],
    ['a weight out of range', { TETHER_UPSTREAMS: 'a=127.0.0.1:1*300' }, /^tether: TETHER_UPSTREAMS: /],
    ['a bad number', { TETHER_UPSTREAMS: '127.0.0.1:1', TETHER_VNODES: 'lots' }, /^tether: TETHER_VNODES: "lots" is not /],
    ['a bad worker count', { TETHER_UPSTREAMS: '127.0.0.1:1', TETHER_WORKERS: 'many' }, /^tether: TETHER_WORKERS: "many" is not auto \(one per CPU\) or an integer from 1 to 256$/],
  ];
  for (const [what, env, pattern] of cases) {
    for (const args of [[], ['check']]) {
      it(`${what} (${args[0] ?? 'run'})`, () => {
        const result = run(env, args);
        expect(result.status).toBe(2);
        const lines = result.stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(pattern);
        expect(result.stdout).toBe('');
      });
    }
  }
});

describe('commands', () => {
  it('check prints the effective settings as JSON and exits 0', () => {
    const result = run({ TETHER_UPSTREAMS: 'db1=127.0.0.1:5432*2,127.0.0.1:5433', TETHER_HASH: 'maglev', TETHER_ADMIN_TOKEN: 's3cret' }, ['check']);
    expect(result.status).toBe(0);
    const settings = JSON.parse(result.stdout) as { listeners: { hash: string; upstreams: unknown[] }[] };
    expect(settings.listeners[0]!.hash).toBe('maglev');
    expect(settings.listeners[0]!.upstreams).toHaveLength(2);
    expect(result.stdout).not.toContain('s3cret');
  });

  it('check shows TETHER_WORKERS, and warns of more workers than CPUs', () => {
    const auto = run({ TETHER_UPSTREAMS: '127.0.0.1:5432', TETHER_WORKERS: 'auto' }, ['check']);
    expect(auto.status).toBe(0);
    expect((JSON.parse(auto.stdout) as { workers: unknown }).workers).toBe('auto');
    // One worker per CPU here; on a one-CPU host that is the single process, and no note.
    if (availableParallelism() === 1) expect(auto.stderr).toBe('');
    else expect(auto.stderr).toMatch(/^tether: note: TETHER_WORKERS=auto: a control plane .* and \d+ workers that accept and relay \(of \d+ CPUs here\), plus a standby, .*; worth it when one relaying core is busy\n$/);
    const two = run({ TETHER_UPSTREAMS: '127.0.0.1:5432', TETHER_WORKERS: '2' }, ['check']);
    expect(two.stderr).toMatch(/^tether: note: TETHER_WORKERS=2: a control plane \(admin API, health checks, membership, store, metrics\) and 2 workers /);
    // How they accept depends on the Node running them (the suite also runs on Node 26: npm run test:node).
    const ownSockets = process.platform === 'linux' && nodeHasReusePort();
    expect(two.stderr).toContain(ownSockets ? 'each accepting on a listening socket of its own (SO_REUSEPORT)' : `accepting on one shared listening socket on Node ${process.versions.node}`);
    // Port 0 (each worker would bind a port of its own): shared on every Node.
    const anyPort = run({ TETHER_UPSTREAMS: '127.0.0.1:5432', TETHER_WORKERS: '2', TETHER_LISTEN: '127.0.0.1:0' }, ['check']);
    expect(anyPort.stderr).toContain('accepting on one shared listening socket');
    const many = run({ TETHER_UPSTREAMS: '127.0.0.1:5432', TETHER_WORKERS: '256' }, ['check']);
    expect(many.status).toBe(0);
    expect((JSON.parse(many.stdout) as { workers: unknown }).workers).toBe(256);
    expect(many.stderr).toMatch(/^tether: warning: TETHER_WORKERS is 256 but this host has \d+ CPUs/);
  });

  it('check accepts config/example-tcp.json', () => {
    const result = run({ TETHER_CONFIG: new URL('../../config/example-tcp.json', import.meta.url).pathname }, ['check']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const settings = JSON.parse(result.stdout) as { listeners: { name: string }[] };
    expect(settings.listeners.map((l) => l.name)).toEqual(['pg', 'game']);
  });

  it('--version prints the package version, --help the usage', () => {
    expect(run({}, ['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = run({}, ['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('tether check');
  });

  it('an unknown command exits 2', () => {
    expect(run({}, ['frobnicate']).status).toBe(2);
  });
});
