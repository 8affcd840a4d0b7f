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
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { ConfigFileError } from './errors.js';
import { EXPECTED } from './parse.js';
import {
  LISTENER_SETTING_KEYS,
  PROCESS_SETTING_KEYS,
  type FileSettings,
  type ListenerFileSettings,
  type ListenerSettingKey,
  type ProcessSettingKey,
} from './schema.js';
import type { Config, ListenerConfig } from './types.js';
import { advice, checkAddresses, resolveStore } from './checks.js';
import { defined, envValue, readEnv, readSettingsFile } from './sources.js';

/** config/defaults.json, next to src/ and to dist/ alike. */
export const DEFAULTS_FILE = fileURLToPath(new URL('../../config/defaults.json', import.meta.url));

export interface LoadResult {
  readonly config: Config;
  /** Things that are allowed but probably not meant, one line each. */
  readonly warnings: readonly string[];
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
      stick: need('stick'),
      inspectBytes: need('inspectBytes'),
      inspectTimeoutMs: need('inspectTimeoutMs'),
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
    stickyMax: required(setting('stickyMax'), 'stickyMax'),
    redisPrefix: required(setting('redisPrefix'), 'redisPrefix'),
    ringThreads: required(setting('ringThreads'), 'ringThreads'),
    workers: required(setting('workers'), 'workers'),
    logLevel: required(setting('logLevel'), 'logLevel'),
    accessLog: required(setting('accessLog'), 'accessLog'),
    drainTimeoutMs: required(setting('drainTimeoutMs'), 'drainTimeoutMs'),
    drainDelayMs: required(setting('drainDelayMs'), 'drainDelayMs'),
    configFile,
  };

  checkAddresses(config, { fromEnv, file });
  warnings.push(...advice(config));
  return { config: deepFreeze(config), warnings };
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
