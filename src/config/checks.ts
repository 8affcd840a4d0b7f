/** Checks across settings, after each was parsed alone: the store's topology, listeners whose addresses overlap, and advice (allowed, but probably not meant). */
import { availableParallelism } from 'node:os';
import { ConfigError } from '../errors.js';
import { ConfigFileError } from './errors.js';
import { addressBytes } from '../net/address.js';
import { EXPECTED, formatHostPort } from './parse.js';
import { formatKeySource } from './parse-keys.js';
import { redisUrlHost } from './parse-store.js';
import type { EnvSettings, FileSettings } from './schema.js';
import type { Config, HostPort, StoreConfig } from './types.js';

export interface Layers {
  readonly fromEnv: EnvSettings;
  readonly file: FileSettings;
}

const SENTINEL_MASTER_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The store URL joined with the file's `redis` object (Sentinel or Cluster). The URL
 * may come from TETHER_STORE and the topology from the file: the password can then
 * stay out of the file.
 */
export function resolveStore(store: StoreConfig, layers: Layers, warnings: string[]): StoreConfig {
  const options = layers.file.redis ?? {};
  const { sentinels, cluster } = options;
  if (sentinels === undefined && cluster === undefined) return store;
  if (store.kind === 'memory') {
    warnings.push(`redis.${sentinels !== undefined ? 'sentinels' : 'cluster'} does nothing while the store is memory`);
    return store;
  }
  const blame = (expected: string): ConfigError =>
    layers.fromEnv.store !== undefined
      ? new ConfigError('TETHER_STORE', store.redacted, expected)
      : new ConfigFileError('TETHER_CONFIG', 'store', store.redacted, expected);
  if (sentinels !== undefined) {
    const { host, port } = redisUrlHost(store.url);
    if (port !== null || !SENTINEL_MASTER_NAME.test(host)) throw blame(EXPECTED.sentinelStore);
    return { ...store, topology: { kind: 'sentinel', name: host, sentinels, sentinelPassword: options.sentinelPassword ?? null } };
  }
  const url = new URL(store.url);
  if (!/^\/?0?$/.test(url.pathname)) throw blame(EXPECTED.clusterStore);
  const nodes: HostPort[] = [{ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 6379 : Number(url.port) }];
  for (const node of cluster ?? []) {
    if (!nodes.some((n) => n.host === node.host && n.port === node.port)) nodes.push(node);
  }
  return { ...store, topology: { kind: 'cluster', nodes } };
}

/** Host text compared as bytes when it is an address, else case-insensitively. */
function hostIdentity(host: string): string {
  const bytes = addressBytes(host);
  return bytes === null ? host.toLowerCase() : Buffer.from(bytes).toString('hex');
}

/**
 * Whether two binds would collide: same port (0 never collides) and the same host,
 * or one of them a wildcard covering the other. On Linux `::` is dual-stack and takes
 * IPv4 too; `0.0.0.0` takes every IPv4 address and, we assume, every host name.
 */
export function bindsOverlap(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  const x = hostIdentity(a.host);
  const y = hostIdentity(b.host);
  if (x === y) return true;
  const v6any = hostIdentity('::');
  const v4any = hostIdentity('0.0.0.0');
  if (x === v6any || y === v6any) return true;
  const v6literal = (host: string): boolean => host.includes(':') && !/^::ffff:/i.test(host);
  if (x === v4any) return !v6literal(b.host);
  if (y === v4any) return !v6literal(a.host);
  return false;
}

export function checkAddresses(config: Config, layers: Layers): void {
  const { listeners } = config;
  const fileListeners = layers.file.listeners ?? [];
  const blameListen = (i: number, value: string, expected: string): ConfigError => {
    if (i === 0 && layers.fromEnv.listen !== undefined) return new ConfigError('TETHER_LISTEN', value, expected);
    if (fileListeners[i]?.listen !== undefined) return new ConfigFileError('TETHER_CONFIG', `listeners[${i}].listen`, value, expected);
    if (layers.file.listen !== undefined) return new ConfigFileError('TETHER_CONFIG', 'listen', value, expected);
    return i === 0 ? new ConfigError('TETHER_LISTEN', value, expected) : new ConfigFileError('TETHER_CONFIG', `listeners[${i}].listen`, value, expected);
  };
  const names = new Map<string, number>();
  listeners.forEach((listener, j) => {
    const first = names.get(listener.name);
    if (first !== undefined) {
      throw new ConfigFileError('TETHER_CONFIG', `listeners[${j}].name`, listener.name, `a unique listener name (listeners[${first}] has it)`);
    }
    names.set(listener.name, j);
    for (let i = 0; i < j; i++) {
      const other = listeners[i]!;
      if (bindsOverlap(other.listen, listener.listen)) {
        const where = formatHostPort(other.listen);
        throw blameListen(j, formatHostPort(listener.listen), `an address of its own (listener "${other.name}" listens on ${where})`);
      }
    }
  });
  const admin = config.admin;
  if (admin === null) return;
  for (const listener of listeners) {
    if (!bindsOverlap(admin, listener.listen)) continue;
    const expected = `an address of its own (listener "${listener.name}" listens on ${formatHostPort(listener.listen)})`;
    const value = formatHostPort(admin);
    if (layers.fromEnv.admin === undefined && layers.file.admin !== undefined) throw new ConfigFileError('TETHER_CONFIG', 'admin', value, expected);
    throw new ConfigError('TETHER_ADMIN', value, expected);
  }
}

const HTTP_ONLY_KEYS = new Set(['header', 'cookie', 'query', 'path']);
/** Read from a connection's first bytes: tcp mode only. */
const TCP_ONLY_KEYS = new Set(['sni', 'mqtt', 'rdp-cookie', 'prefix']);

function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const bytes = addressBytes(host);
  if (bytes === null) return false;
  const v4 = bytes.subarray(0, 12).every((b, i) => b === (i >= 10 ? 0xff : 0));
  if (v4) return bytes[12] === 127;
  return bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1;
}

/** Settings that are valid but probably not what was meant. */
export function advice(config: Config): string[] {
  const out: string[] = [];
  for (const listener of config.listeners) {
    const at = `listener "${listener.name}"`;
    if (listener.mode === 'tcp') {
      const httpOnly = listener.key.filter((k) => HTTP_ONLY_KEYS.has(k.kind)).map((k) => `${k.kind}:`);
      if (httpOnly.length > 0) {
        out.push(`${at}: key sources ${[...new Set(httpOnly)].join(', ')} need mode http; in tcp mode they yield no key`);
      }
      if (listener.learn.length > 0) out.push(`${at}: learn rules need mode http; in tcp mode they do nothing`);
    } else {
      const tcpOnly = listener.key.filter((k) => TCP_ONLY_KEYS.has(k.kind)).map(formatKeySource);
      if (tcpOnly.length > 0) {
        out.push(`${at}: key sources ${[...new Set(tcpOnly)].join(', ')} need mode tcp; in http mode they yield no key`);
      }
    }
    const ip = listener.key.findIndex((k) => k.kind === 'source-ip');
    if (ip >= 0 && ip < listener.key.length - 1) {
      out.push(`${at}: source-ip always yields a key, so the key sources after it are never used`);
    }
    if (listener.mode === 'http' && listener.learn.length > 0 && !listener.key.some((k) => HTTP_ONLY_KEYS.has(k.kind))) {
      out.push(`${at}: learn rules are set but the key chain has no header:, cookie:, query: or path: source to carry a learned key`);
    }
    if (listener.acceptProxy !== 'off' && listener.trustedProxies.length === 0) {
      out.push(`${at}: acceptProxy is ${listener.acceptProxy} but trustedProxies is empty, so every connection will be refused`);
    }
    if (listener.healthTimeoutMs > listener.healthIntervalMs && listener.health.kind !== 'off') {
      out.push(`${at}: healthTimeoutMs (${listener.healthTimeoutMs}) is longer than healthIntervalMs (${listener.healthIntervalMs})`);
    }
  }
  out.push(...workersAdvice(config, availableParallelism()));
  if (config.admin === null && config.adminToken !== null) out.push('TETHER_ADMIN_TOKEN is set but the admin API is off');
  if (config.admin !== null && config.adminToken === null && !isLoopback(config.admin.host)) {
    out.push(`the admin API on ${formatHostPort(config.admin)} has no TETHER_ADMIN_TOKEN: whoever reaches it can change upstreams`);
  }
  return out;
}

/** TETHER_WORKERS against this host's CPUs. */
export function workersAdvice(config: Config, cpus: number): string[] {
  const workers = config.workers === 'auto' ? cpus : config.workers;
  return workers > cpus ? [`TETHER_WORKERS is ${workers} but this host has ${cpus} CPUs: workers beyond one per CPU only compete for cores`] : [];
}
