/**
 * What the benches that start their own tether share: a free loopback port, and
 * waiting until a tether answers /healthz.
 */
import net from 'node:net';

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
