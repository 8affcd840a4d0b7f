/**
 * What the benches that start their own tether share: a free loopback port, an echo
 * server in a child process, and waiting until a tether answers /healthz.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
