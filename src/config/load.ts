/**
 * file + environment -> one frozen Config, validated once, here.
 *
 * Precedence, lowest first:
 *   1. config/defaults.json (the only place defaults live; ships with the package),
 *   2. the JSON file named by TETHER_CONFIG: top-level listener settings are defaults
 *      for each of its listeners, which override them,
 *   3. environment variables: process settings, and the first listener's settings
 *      (a first listener is made when the file has none).
 * Empty or blank variables count as unset. Unknown TETHER_* variables are warnings,
 * not errors: another version of tether may know them.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, errorMessage } from '../errors.js';
import { ConfigFileError, formatLocation } from './errors.js';
import { addressBytes } from '../net/address.js';
import { EXPECTED, formatHostPort } from './parse.js';
import { redisUrlHost } from './parse-store.js';
import {
  LISTENER_SETTING_KEYS,
  PROCESS_SETTING_KEYS,
  closest,
  envSchema,
  fileSchema,
  firstProblem,
  type EnvSettings,
  type FileSettings,
  type ListenerFileSettings,
  type ListenerSettingKey,
  type ProcessSettingKey,
} from './schema.js';
import type { Config, HostPort, ListenerConfig, StoreConfig } from './types.js';

/** config/defaults.json, next to src/ and to dist/ alike. */
export const DEFAULTS_FILE = fileURLToPath(new URL('../../config/defaults.json', import.meta.url));

export interface LoadResult {
  readonly config: Config;
  /** Things that are allowed but probably not meant, one line each. */
  readonly warnings: readonly string[];
}

type SettingKey = ListenerSettingKey | ProcessSettingKey;

/** `stickyTtlS` -> `TETHER_STICKY_TTL_S`. */
export function envName(key: SettingKey): string {
  return `TETHER_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Every variable tether reads. */
export const ENV_VARIABLES: readonly string[] = [
  'TETHER_CONFIG',
  ...[...LISTENER_SETTING_KEYS, ...PROCESS_SETTING_KEYS].map(envName),
].sort();

const ENV_KEYS = new Map<string, SettingKey>(
  [...LISTENER_SETTING_KEYS, ...PROCESS_SETTING_KEYS].map((key) => [envName(key), key]),
);

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfigWithWarnings(env).config;
}

export function loadConfigWithWarnings(env: NodeJS.ProcessEnv = process.env): LoadResult {
  const warnings: string[] = [];
  const defaults = readSettingsFile('config/defaults.json', DEFAULTS_FILE, 'config/defaults.json');
  const given = envValue(env, 'TETHER_CONFIG');
  const configFile = given === undefined ? null : resolve(given);
  const file: FileSettings =
    given === undefined || configFile === null ? {} : readSettingsFile('TETHER_CONFIG', configFile, given);
  const fromEnv = readEnv(env, warnings);

  const settings = {
    ...defined(defaults, PROCESS_SETTING_KEYS),
    ...defined(file, PROCESS_SETTING_KEYS),
    ...defined(fromEnv, PROCESS_SETTING_KEYS),
  };
  const shared = { ...defined(defaults, LISTENER_SETTING_KEYS), ...defined(file, LISTENER_SETTING_KEYS) };
  const fileListeners: readonly ListenerFileSettings[] =
    file.listeners !== undefined && file.listeners.length > 0 ? file.listeners : [{}];

  const listeners = fileListeners.map((own, i): ListenerConfig => {
    const parts = {
      ...shared,
      ...defined(own, LISTENER_SETTING_KEYS),
      ...(i === 0 ? defined(fromEnv, LISTENER_SETTING_KEYS) : {}),
    };
    const name = own.name ?? (i === 0 ? 'default' : `listener-${i + 1}`);
    if (parts.upstreams === undefined) {
      throw i === 0
        ? new ConfigError('TETHER_UPSTREAMS', undefined, `${EXPECTED.upstreams} (required, here or in TETHER_CONFIG)`)
        : new ConfigFileError(
            'TETHER_CONFIG',
            `listeners[${i}].upstreams`,
            undefined,
            'a list of [name=]host:port[*weight] (every listener needs upstreams)',
          );
    }
    const need = <K extends ListenerSettingKey>(key: K): NonNullable<(typeof parts)[K]> => {
      const value = parts[key];
      if (value === undefined || value === null) throw new Error(`${DEFAULTS_FILE} has no default for ${key}`);
      return value as NonNullable<(typeof parts)[K]>;
    };
    return {
      name,
      listen: need('listen'),
      mode: need('mode'),
      upstreams: parts.upstreams,
      key: need('key'),
      hash: need('hash'),
      vnodes: need('vnodes'),
      balanceFactor: need('balanceFactor'),
      learn: need('learn'),
      stickyTtlS: need('stickyTtlS'),
      proxyProtocol: need('proxyProtocol'),
      acceptProxy: need('acceptProxy'),
      trustedProxies: need('trustedProxies'),
      health: need('health'),
      healthIntervalMs: need('healthIntervalMs'),
      healthTimeoutMs: need('healthTimeoutMs'),
      healthRise: need('healthRise'),
      healthFall: need('healthFall'),
      connectTimeoutMs: need('connectTimeoutMs'),
      retries: need('retries'),
      idleTimeoutMs: need('idleTimeoutMs'),
      headTimeoutMs: need('headTimeoutMs'),
      maxHeadBytes: need('maxHeadBytes'),
      maxConnections: need('maxConnections'),
    };
  });

  const setting = <K extends ProcessSettingKey>(key: K): NonNullable<(typeof settings)[K]> | null => {
    const value = settings[key];
    if (value === undefined) throw new Error(`${DEFAULTS_FILE} has no default for ${key}`);
    return value as NonNullable<(typeof settings)[K]> | null;
  };
  const required = <T>(value: T | null, key: ProcessSettingKey): T => {
    if (value === null) throw new Error(`${DEFAULTS_FILE} has null for ${key}`);
    return value;
  };
  const config: Config = {
    listeners,
    admin: setting('admin'),
    adminToken: setting('adminToken'),
    store: resolveStore(required(setting('store'), 'store'), { fromEnv, file }, warnings),
    storeTimeoutMs: required(setting('storeTimeoutMs'), 'storeTimeoutMs'),
    redisPrefix: required(setting('redisPrefix'), 'redisPrefix'),
    ringThreads: required(setting('ringThreads'), 'ringThreads'),
    logLevel: required(setting('logLevel'), 'logLevel'),
    accessLog: required(setting('accessLog'), 'accessLog'),
    drainTimeoutMs: required(setting('drainTimeoutMs'), 'drainTimeoutMs'),
    configFile,
  };

  checkAddresses(config, { fromEnv, file });
  warnings.push(...advice(config));
  return { config: deepFreeze(config), warnings };
}

// ---------------------------------------------------------------- sources

function defined<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

/**
 * Read and validate a JSON settings file. `variable` names it in errors,
 * `shown` is the path as the user wrote it.
 */
function readSettingsFile(variable: string, path: string, shown: string): FileSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(variable, shown, `a readable JSON file (${describeFsError(error)})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new ConfigError(variable, shown, `valid JSON (${describeJsonError(error, text.replace(/^\uFEFF/, ''))})`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    const kind = Array.isArray(data) ? 'an array' : data === null ? 'null' : `a ${typeof data}`;
    throw new ConfigError(variable, shown, `a JSON object of settings (it holds ${kind})`);
  }
  const result = fileSchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    const problem = firstProblem(result.error);
    throw new ConfigFileError(variable, formatLocation(problem.path), problem.value, problem.expected);
  }
  return result.data;
}

function readEnv(env: NodeJS.ProcessEnv, warnings: string[]): EnvSettings {
  const raw: Record<string, string> = {};
  for (const [name, key] of ENV_KEYS) {
    const value = envValue(env, name);
    if (value !== undefined) raw[key] = value;
  }
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('TETHER_') || name === 'TETHER_CONFIG' || ENV_KEYS.has(name)) continue;
    const guess = closest(name, ENV_VARIABLES);
    warnings.push(`${name} is not a known variable${guess === undefined ? '' : ` (did you mean ${guess}?)`}; ignored`);
  }
  const result = envSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const problem = firstProblem(result.error);
  const key = String(problem.path[0]) as SettingKey;
  // A list's complaint quotes the bad item; anything else quotes the variable's text.
  const value = typeof problem.value === 'string' ? problem.value : raw[key];
  throw new ConfigError(envName(key), value, problem.expected);
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return errorMessage(error);
  }
}

/** V8's message without the source excerpt it may quote, plus line and column. */
function describeJsonError(error: unknown, text: string): string {
  const message = (errorMessage(error))
    .replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/\s+/g, ' ')
    .slice(0, 120);
  const offset = jsonErrorOffset(text);
  if (offset < 0) return message;
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `${message} at line ${line} column ${column}`;
}

/**
 * Offset of the first character that makes `text` invalid JSON, or -1. V8 gives a
 * position for some errors only; people want a line for all of them.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const fail = (): never => {
    throw new JsonStop(i);
  };
  const space = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = (): void => {
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c === 0x5c) {
        const next = text[i + 1];
        if (next === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail();
          i += 6;
        } else if (next !== undefined && '"\\/bfnrt'.includes(next)) {
          i += 2;
        } else {
          fail();
        }
        continue;
      }
      if (c < 0x20) fail();
      i++;
    }
    fail();
  };
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          space();
          if (text[i] !== '"') fail();
          string();
          space();
          if (text[i] !== ':') fail();
          i++;
        }
        value();
        space();
        if (text[i] === ',') i++;
        else if (text[i] === close) {
          i++;
          return;
        } else fail();
      }
    }
    if (c === '"') return string();
    for (const literal of ['true', 'false', 'null']) {
      if (c !== literal[0]) continue;
      let j = 0;
      while (j < literal.length && text[i + j] === literal[j]) j++;
      i += j;
      if (j < literal.length) fail();
      return;
    }
    number.lastIndex = i;
    if (number.exec(text) === null) fail();
    i = number.lastIndex;
  };
  try {
    value();
    space();
    if (i < text.length) fail();
    return -1;
  } catch (error) {
    return error instanceof JsonStop ? error.offset : -1;
  }
}

class JsonStop {
  constructor(readonly offset: number) {}
}

// ---------------------------------------------------------------- cross-checks

interface Layers {
  readonly fromEnv: EnvSettings;
  readonly file: FileSettings;
}

const SENTINEL_MASTER_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The store URL joined with the file's `redis` object (Sentinel or Cluster). The URL
 * may come from TETHER_STORE and the topology from the file: the password can then
 * stay out of the file.
 */
function resolveStore(store: StoreConfig, layers: Layers, warnings: string[]): StoreConfig {
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

function checkAddresses(config: Config, layers: Layers): void {
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

function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const bytes = addressBytes(host);
  if (bytes === null) return false;
  const v4 = bytes.subarray(0, 12).every((b, i) => b === (i >= 10 ? 0xff : 0));
  if (v4) return bytes[12] === 127;
  return bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1;
}

/** Settings that are valid but probably not what was meant. */
function advice(config: Config): string[] {
  const out: string[] = [];
  for (const listener of config.listeners) {
    const at = `listener "${listener.name}"`;
    if (listener.mode === 'tcp') {
      const httpOnly = listener.key.filter((k) => HTTP_ONLY_KEYS.has(k.kind)).map((k) => `${k.kind}:`);
      if (httpOnly.length > 0) {
        out.push(`${at}: key sources ${[...new Set(httpOnly)].join(', ')} need mode http; in tcp mode only source-ip yields a key`);
      }
      if (listener.learn.length > 0) out.push(`${at}: learn rules need mode http; in tcp mode they do nothing`);
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
  if (config.admin === null && config.adminToken !== null) out.push('TETHER_ADMIN_TOKEN is set but the admin API is off');
  if (config.admin !== null && config.adminToken === null && !isLoopback(config.admin.host)) {
    out.push(`the admin API on ${formatHostPort(config.admin)} has no TETHER_ADMIN_TOKEN: whoever reaches it can change upstreams`);
  }
  return out;
}

// ---------------------------------------------------------------- freezing

/** Freeze objects and arrays all the way down; RegExp and byte arrays stay as they are. */
function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || value instanceof RegExp || ArrayBuffer.isView(value)) return value;
  if (Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return value;
}
