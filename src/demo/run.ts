/**
 * `npm run demo`: three local upstreams and a balancer in front of them. Shows which
 * upstream each client address is pinned to, what moves when one upstream goes away
 * (only its own keys) and comes back (the first mapping, exactly), then keeps running.
 */
import net from 'node:net';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { Tether } from '../app/tether.js';
import { errorMessage } from '../errors.js';

const NAMES = ['alpha', 'beta', 'gamma'] as const;
const CLIENTS = 24;

interface DemoUpstream {
  readonly name: string;
  server: net.Server;
  port: number;
}

async function startUpstream(name: string, port = 0): Promise<DemoUpstream> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${name}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return { name, server, port: (server.address() as net.AddressInfo).port };
}

function stopUpstream(u: DemoUpstream): Promise<void> {
  return new Promise((resolve) => u.server.close(() => resolve()));
}

function ask(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('close', () => resolve(text.trim() || '(closed)'));
    socket.on('error', () => {});
    socket.setTimeout(3_000, () => socket.destroy());
  });
}

async function snapshot(port: number): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  for (let i = 0; i < CLIENTS; i++) {
    const address = `127.0.0.${10 + i}`;
    map.set(address, await ask(port, address));
  }
  return map;
}

function printMap(title: string, map: Map<string, string>, previous?: Map<string, string>): void {
  console.log(`\n${title}`);
  const rows = [...map.entries()];
  for (let i = 0; i < rows.length; i += 4) {
    const line = rows
      .slice(i, i + 4)
      .map(([addr, name]) => {
        const moved = previous && previous.get(addr) !== name ? ' *' : '  ';
        return `${addr.padEnd(12)} -> ${name.padEnd(6)}${moved}`;
      })
      .join('   ');
    console.log(`  ${line}`);
  }
  const counts = new Map<string, number>();
  for (const name of map.values()) counts.set(name, (counts.get(name) ?? 0) + 1);
  console.log(`  share: ${[...counts.entries()].sort().map(([n, c]) => `${n} ${c}`).join(', ')}`);
  if (previous) {
    const moved = rows.filter(([addr, name]) => previous.get(addr) !== name).length;
    console.log(`  moved: ${moved} of ${rows.length} (marked *)`);
  }
}

async function waitForState(tether: Tether, name: string, state: string): Promise<void> {
  const pool = tether.runtime()!.pool;
  while (pool.get(name)?.state !== state) await new Promise((r) => setTimeout(r, 50));
}

async function main(): Promise<void> {
  const upstreams = await Promise.all(NAMES.map((n) => startUpstream(n)));
  const config = loadConfig({
    TETHER_LISTEN: process.env.TETHER_LISTEN ?? '127.0.0.1:0',
    TETHER_ADMIN: process.env.TETHER_ADMIN ?? '127.0.0.1:0',
    TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=127.0.0.1:${u.port}`).join(','),
    TETHER_HEALTH: 'tcp',
    TETHER_HEALTH_INTERVAL_MS: '250',
    TETHER_HEALTH_FALL: '2',
    TETHER_HEALTH_RISE: '1',
    TETHER_LOG_LEVEL: process.env.TETHER_LOG_LEVEL ?? 'error',
    TETHER_ACCESS_LOG: 'off',
  });
  const tether = await Tether.start(config, { logger: createLogger(config.logLevel) });
  const port = tether.runtime()!.listener.port;
  console.log(`tether demo: balancer on 127.0.0.1:${port} (tcp mode, source-ip key, consistent hash ring, ${config.listeners[0]!.vnodes} vnodes)`);
  console.log(`upstreams: ${upstreams.map((u) => `${u.name}=127.0.0.1:${u.port}`).join(', ')}`);

  const first = await snapshot(port);
  printMap(`1. ${CLIENTS} client addresses, each pinned to one upstream:`, first);
  const again = await snapshot(port);
  const stable = [...first.keys()].every((a) => first.get(a) === again.get(a));
  console.log(`   asked again: ${stable ? 'every address reached the same upstream' : 'MISMATCH'}`);

  const victim = upstreams[1]!;
  await stopUpstream(victim);
  await waitForState(tether, victim.name, 'down');
  const without = await snapshot(port);
  printMap(`2. ${victim.name} stopped; health checks marked it down. Only its addresses moved:`, without, first);

  const restarted = await startUpstream(victim.name, victim.port);
  upstreams[1] = restarted;
  await waitForState(tether, victim.name, 'up');
  const back = await snapshot(port);
  printMap(`3. ${victim.name} is back: every address returns to where it was:`, back, without);
  const restored = [...first.keys()].every((a) => first.get(a) === back.get(a));
  console.log(`   same as step 1: ${restored ? 'yes' : 'NO'}`);

  const admin = tether.adminAddress;
  console.log(`\nStill running. Try:`);
  console.log(`  nc 127.0.0.1 ${port}                       # from this address you always reach the same upstream`);
  if (admin) {
    console.log(`  curl http://${admin}/upstreams            # state, active and total connections`);
    console.log(`  curl 'http://${admin}/route?key=127.0.0.10' # where a key goes and why`);
    console.log(`  curl -X POST http://${admin}/upstreams/alpha/drain`);
    console.log(`stats page: http://${admin}/`);
  }
  console.log('Ctrl-C to stop.');
  const stop = (): void => {
    void tether.shutdown(1_000).then(async () => {
      await Promise.all(upstreams.map(stopUpstream));
      process.exit(0);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (process.env.TETHER_DEMO_EXIT === '1') stop();
}

main().catch((err: unknown) => {
  console.error(`tether demo: ${errorMessage(err)}`);
  process.exit(1);
});
