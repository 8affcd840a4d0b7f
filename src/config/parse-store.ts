/** The store settings: TETHER_STORE (memory or a Redis URL, never echoed with its password), the key prefix, passwords. */
import { ConfigError } from '../errors.js';
import { EXPECTED } from './parse.js';
import type { StoreConfig } from './types.js';

/** The URL with any password (or bare user-info, which may be one) replaced by `***`. */
export function redactRedisUrl(url: string): string {
  const match = /^([a-z]+:\/\/)([^/?#]*)@/i.exec(url);
  if (match === null) {
    // An '@' past a '/', '?' or '#' may still end a mistyped password: hide all before it.
    const at = url.lastIndexOf('@');
    const start = url.indexOf('//') + 2;
    return at < start ? url : `${url.slice(0, start)}***${url.slice(at)}`;
  }
  const userinfo = match[2]!;
  const colon = userinfo.indexOf(':');
  const redacted = colon < 0 ? '***' : `${userinfo.slice(0, colon)}:***`;
  return `${match[1]}${redacted}${url.slice(match[0].length - 1)}`;
}

/**
 * `memory`, or `redis://[[user]:password@]host[:port][/db]` (also `rediss://` for
 * TLS). The port defaults to 6379 as in every Redis client. Errors quote the URL
 * redacted: a password never reaches stderr.
 */
export function parseStore(variable: string, value: string): StoreConfig {
  const text = value.trim();
  if (text === 'memory') return { kind: 'memory' };
  const redacted = redactRedisUrl(text);
  const fail = (): never => {
    throw new ConfigError(variable, redacted, EXPECTED.store);
  };
  if (!/^rediss?:\/\//.test(text)) fail();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail();
  }
  if (url.hostname === '' || url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#')) fail();
  if (url.port !== '' && (Number(url.port) < 1 || Number(url.port) > 65535)) fail();
  if (!/^(\/(\d{1,5})?)?$/.test(url.pathname)) fail();
  return { kind: 'redis', url: text, redacted, topology: { kind: 'standalone' } };
}

/** The host part of a Redis URL as written (URL lower-cases it; master names keep case). */
export function redisUrlHost(url: string): { host: string; port: string | null } {
  const rest = url.slice(url.indexOf('//') + 2);
  const authority = rest.slice(0, rest.search(/[/?#]|$/));
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const match = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostPort)!;
  return { host: match[1]!, port: match[2] ?? null };
}

/** TETHER_REDIS_PREFIX: prepended to every key and channel; `{...}` hash tags allowed. */
export function parseRedisPrefix(variable: string, value: string): string {
  const text = value.trim();
  if (!/^[\x21-\x7e]{1,128}$/.test(text)) throw new ConfigError(variable, value, EXPECTED.redisPrefix);
  return text;
}

/** A Redis password given as a setting (redis.sentinelPassword): never echoed. */
export function parseRedisPassword(variable: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,4096}$/.test(value)) {
    throw new ConfigError(variable, '***', EXPECTED.redisPassword);
  }
  return value;
}
