/**
 * What the benches that start their own tether share: a free loopback port, an echo
 * server in a child process, waiting until a tether answers /healthz, the environment
 * of a tether that only relays, the peers' config templates filled in, and medians.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const peersDir = join(dirname(fileURLToPath(import.meta.url)), 'peers');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The median of `values` (the mean of the middle two for an even count), or null for none. */
export function median(values) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** A TCP port free on 127.0.0.1 now (the kernel's pick). */
export function freePort() {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/**
 * Resolves once `admin` (http://host:port) answers /healthz with 200; throws with
 * `label` if the process `child` exits first or a minute goes by.
 */
export async function waitHealthy(admin, child, label) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${admin}/healthz`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tether did not start (${label})`);
    await sleep(50);
  }
}

/**
 * A scratch directory and an echo server in a child process (`script --role=echo`,
 * which sends `{ port }` once listening), removed by `cleanup()` or on Ctrl-C.
 */
export async function echoChild(script, prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const echo = fork(script, ['--role=echo'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const cleanup = () => {
    echo.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  const { port } = await new Promise((res) => echo.once('message', res));
  return { dir, echoPort: port, cleanup };
}

/**
 * The environment of a tether that does nothing but relay (this process's, without its
 * TETHER_* settings): no admin listener, health checks or access log, warnings only;
 * `settings` adds the rest (TETHER_LISTEN, TETHER_UPSTREAMS, ...) and may override.
 */
export function relayOnlyEnv(settings) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TETHER_')));
  return Object.assign(env, { TETHER_ADMIN: 'off', TETHER_ACCESS_LOG: 'off', TETHER_LOG_LEVEL: 'warn', TETHER_HEALTH: 'off' }, settings);
}

/** A config template from peers/ with each {{FIELD}} filled in; throws when one is left without a value. */
export function fillTemplate(file, fields) {
  let text = readFileSync(join(peersDir, file), 'utf8');
  for (const [k, v] of Object.entries(fields)) text = text.replaceAll(`{{${k}}}`, v);
  const left = /\{\{(\w+)\}\}/.exec(text);
  if (left) throw new Error(`${file}: no value for {{${left[1]}}}`);
  return text;
}
