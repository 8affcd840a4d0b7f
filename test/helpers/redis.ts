/**
 * Real Redis servers for tests: `redis-server` on a free loopback port, no persistence
 * (`--save '' --appendonly no`), stopped by pid. `npm test` installs redis-server first
 * where it can (test/setup/redis.ts); a machine still without it fails the test with a
 * message saying how to install it; nothing is skipped silently.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from '../../src/store/create.js';
import type { RedisStore } from '../../src/store/redis/store.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import type { Tether } from '../../src/app/tether.js';
import { waitFor } from './clients.js';
import { freePort } from './upstreams.js';

const INSTALL_HINT = 'install it with `apt-get install -y redis-server` (npm test does this itself when run as root)';

/** Every redis process this test file started: killed if the file's process exits first. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Throws a clear error when a Redis binary is missing. */
export function requireBinary(name: 'redis-server' | 'redis-cli'): void {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error(`${name} not found on PATH: ${INSTALL_HINT}`);
}

export interface RedisServer {
  readonly port: number;
  /** `redis://[:password@]127.0.0.1:PORT`: what TETHER_STORE takes. */
  readonly url: string;
  /** Pid of the current process, null while stopped. */
  readonly pid: number | null;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash: connections are reset. */
  kill(): Promise<void>;
  /** SIGSTOP: Redis hangs with its connections open (nothing answers). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Start again on the same port, empty (there is no persistence). */
  restart(): Promise<void>;
  /** redis-cli against this server; its stdout, trimmed. */
  cli(...args: string[]): string;
}

export interface RedisOptions {
  readonly port?: number;
  readonly password?: string;
  /** More redis-server arguments, e.g. ['--replicaof', '127.0.0.1', '6379']. */
  readonly args?: readonly string[];
}

/** Answer to PING: +PONG, or -NOAUTH when a password is set. Either means it is up. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (chunk: Buffer) => done(/^(\+PONG|-NOAUTH)/.test(chunk.toString('latin1'))));
    socket.write('PING\r\n');
  });
}

function spawnRedis(args: readonly string[], what: string): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.once('exit', () => running.delete(child));
  return new Promise<ChildProcess>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new Error(`redis-server not found on PATH: ${INSTALL_HINT}`) : err);
    });
    child.once('spawn', () => resolve(child));
  }).then(async (started) => {
    const port = Number(args[args.indexOf('--port') + 1]);
    let exited = false;
    started.once('exit', () => (exited = true));
    await waitFor(async () => exited || (await pings(port)), 15_000, `${what} on port ${port}`, 50);
    if (exited) throw new Error(`${what} exited at start: ${output.trim().slice(-500)}`);
    return started;
  });
}

function stopChild(child: ChildProcess | null, signal: NodeJS.Signals): Promise<void> {
  if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    if (signal === 'SIGKILL' || signal === 'SIGTERM') child.kill('SIGCONT');
    child.kill(signal);
  });
}

/** redis-server on a free port of 127.0.0.1 (or `options.port`), with no persistence. */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  requireBinary('redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'tether-redis-'));
  const port = options.port ?? (await freePort());
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--daemonize', 'no',
    '--loglevel', 'warning',
    ...(options.password === undefined ? [] : ['--requirepass', options.password]),
    ...(options.args ?? []),
  ];
  let child: ChildProcess | null = await spawnRedis(args, 'redis-server');
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  const server: RedisServer = {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? null;
    },
    async stop() {
      await stopChild(child, 'SIGTERM');
      child = null;
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      await stopChild(child, 'SIGKILL');
      child = null;
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async restart() {
      await stopChild(child, 'SIGKILL');
      child = await spawnRedis(args, 'redis-server');
    },
    cli(...cliArgs: string[]) {
      return redisCli(port, options.password, cliArgs);
    },
  };
  return server;
}

export function redisCli(port: number, password: string | undefined, args: readonly string[]): string {
  requireBinary('redis-cli');
  const auth = password === undefined ? [] : ['--no-auth-warning', '-a', password];
  const result = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout.trim();
}

// ---------------------------------------------------------------- Sentinel

export interface RedisSentinel {
  readonly port: number;
  stop(): Promise<void>;
}

/** A Sentinel watching `masterPort` as group `name` (quorum 1: one sentinel decides). */
export async function startSentinel(masterPort: number, name: string, options: { downAfterMs?: number } = {}): Promise<RedisSentinel> {
  requireBinary('redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'tether-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${name} 10000`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | null = await spawnRedis([conf, '--sentinel', '--port', String(port)], 'redis sentinel');
  return {
    port,
    async stop() {
      await stopChild(child, 'SIGTERM');
      child = null;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- Cluster

export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  stop(): Promise<void>;
}

/** Three masters, no replicas: the smallest Redis Cluster redis-cli will create. */
export async function startCluster(size = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < size; i++) {
      const bus = await freePort();
      nodes.push(
        await startRedis({
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-port', String(bus), '--cluster-node-timeout', '2000'],
        }),
      );
    }
    redisCli(nodes[0]!.port, undefined, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    await waitFor(() => nodes.every((n) => n.cli('cluster', 'info').includes('cluster_state:ok')), 20_000, 'cluster_state:ok on every node', 100);
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  return { nodes, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

// ---------------------------------------------------------------- stores

export interface OpenStore {
  readonly store: RedisStore;
  /** Store errors counted so far (what tether_store_errors_total would show). */
  readonly errors: () => number;
  close(): Promise<void>;
}

/**
 * A RedisStore as tether makes one, from TETHER_* settings (TETHER_STORE=url), once it
 * is connected.
 */
export async function openRedisStore(url: string, env: Record<string, string> = {}): Promise<OpenStore> {
  const config = loadConfig({ TETHER_UPSTREAMS: '127.0.0.1:1', TETHER_STORE: url, ...env });
  let errors = 0;
  const store = createStore(config, { logger: createLogger('silent'), onError: () => errors++ }) as RedisStore;
  if (!(await store.membership.ready(10_000))) {
    await store.close();
    throw new Error(`the Redis store at ${url} did not connect within 10 s`);
  }
  return { store, errors: () => errors, close: () => store.close() };
}

/** Wait until an in-process balancer's shared store answers (after a Redis restart). */
export async function waitForStore(tether: Tether, timeoutMs = 20_000): Promise<void> {
  const membership = tether.store.membership;
  if (membership === null) throw new Error('this balancer has no shared store');
  if (!(await membership.ready(timeoutMs))) throw new Error(`the store did not answer within ${timeoutMs} ms`);
}
