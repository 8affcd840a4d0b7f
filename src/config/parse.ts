/**
 * Small pure parsers for single settings. Each takes the text of one setting (as an
 * environment variable or a config file string holds it) and the name to blame,
 * and returns a value or throws ConfigError(variable, offending value, expected).
 * For lists the offending value is the one bad item, not the whole list.
 *
 * Decisions worth knowing:
 * - `:7000` (no host) means all IPv4 interfaces, `0.0.0.0`, as HAProxy's `bind :7000`
 *   does, and port 0 means a free port the system picks; both only where tether
 *   listens (TETHER_LISTEN, TETHER_ADMIN, via parseListen). An upstream needs a host
 *   and a port from 1 to 65535 (parseHostPort). IPv6 hosts go in brackets,
 *   `[::]:7000`, and are stored without them; a bare `::1:7000` is refused.
 * - Parsers take (variable, value) in the order of ConfigError(variable, value, ...).
 * - Key chains and learn rules are comma lists whose items may hold a regex, and
 *   regexes may hold commas (`a{1,3}`). A comma ends an item only when what follows it
 *   starts a recognised item (`source-ip`, `header:`, `cookie:`, `query:`, `path:`;
 *   for learn rules `header:`, `set-cookie:`); any other piece after a regex item is
 *   part of that regex. So a regex cannot contain `,header:` and the like: use a
 *   JSON array in the config file for that.
 * - A CIDR with host bits set (`10.0.0.1/8`) is refused with the network it probably
 *   meant, rather than silently widened.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { CIDR_EXPECTED, parseCidrText } from '../net/cidr.js';
import type {
  Cidr,
  HashAlgorithm,
  HealthCheck,
  HostPort,
  KeySource,
  LearnRule,
  Mode,
  ProxyProtocolIn,
  ProxyProtocolOut,
  StoreConfig,
  UpstreamSpec,
} from './types.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Integer settings: inclusive ranges and what 0 means where it is allowed. */
export const INTEGER_RANGES = {
  vnodes: { min: 1, max: 10_000 },
  stickyTtlS: { min: 1, max: 31_536_000 },
  storeTimeoutMs: { min: 1, max: 60_000 },
  healthIntervalMs: { min: 1, max: 86_400_000 },
  healthTimeoutMs: { min: 1, max: 86_400_000 },
  healthRise: { min: 1, max: 100 },
  healthFall: { min: 1, max: 100 },
  connectTimeoutMs: { min: 1, max: 86_400_000 },
  retries: { min: 0, max: 10 },
  idleTimeoutMs: { min: 0, max: 86_400_000, zero: 'never' },
  headTimeoutMs: { min: 1, max: 86_400_000 },
  maxHeadBytes: { min: 1024, max: 1_048_576 },
  maxConnections: { min: 1, max: 1_000_000 },
  drainTimeoutMs: { min: 0, max: 86_400_000, zero: 'close at once' },
  ringThreads: { min: 0, max: 64, zero: 'build on the main thread' },
  weight: { min: 1, max: 256 },
} as const satisfies Record<string, { min: number; max: number; zero?: string }>;

export type IntegerSetting = keyof typeof INTEGER_RANGES;

export const BALANCE_FACTOR_MAX = 100;

// ---------------------------------------------------------------- expected texts

export const EXPECTED = {
  hostPort: 'host:port with a port from 1 to 65535',
  hostPortIpv6: 'host:port with an IPv6 host in brackets, e.g. [::1]:7000',
  hostPortHost: 'host:port with a valid host name or IP address',
  hostPortNoHost: 'host:port with a host before the port',
  listen: 'host:port with a port from 1 to 65535 (0: any free port)',
  upstream: '[name=]host:port[*weight]',
  upstreams: 'a comma list of [name=]host:port[*weight]',
  uniqueUpstream: 'a unique upstream name',
  upstreamName: 'a name of 1-128 characters from A-Z a-z 0-9 . _ : - [ ]',
  listenerName: 'a name of 1-64 characters from A-Z a-z 0-9 . _ -',
  keySource: 'one of source-ip, header:NAME, cookie:NAME, query:NAME, path:REGEX',
  keyChain: 'a comma list of source-ip, header:NAME, cookie:NAME, query:NAME, path:REGEX',
  learnRule: 'one of header:NAME=REGEX, set-cookie:NAME',
  learnRules: 'a comma list of header:NAME=REGEX, set-cookie:NAME, or none',
  hash: 'one of ring, maglev, rendezvous, modulo',
  mode: 'one of tcp, http',
  health: 'one of off, tcp, http:PATH, ws:PATH (PATH starting with /)',
  proxyProtocol: 'one of off, v1, v2',
  acceptProxy: 'one of off, v1, v2, any',
  cidr: CIDR_EXPECTED,
  cidrs: 'a comma list of CIDRs like 10.0.0.0/8 or fd00::/8, or none',
  store: 'memory or redis://[:password@]host:port[/db]',
  redisPrefix: '1-128 visible ASCII characters (no spaces), e.g. tether:',
  redisNodes: 'a list of host:port',
  redisPassword: 'a password of 1-4096 visible ASCII characters (no spaces)',
  sentinelStore: 'redis://[[user]:password@]MASTER[/db]: with redis.sentinels the host part names the Sentinel master group (1-128 of A-Z a-z 0-9 . _ -) and takes no port',
  clusterStore: 'redis://[[user]:password@]host:port with db 0 or none: Redis Cluster has db 0 only',
  admin: 'host:port with a port from 1 to 65535 (0: any free port), or off',
  adminToken: 'a token of 1-4096 visible ASCII characters (no spaces)',
  logLevel: 'one of fatal, error, warn, info, debug, trace, silent',
  boolean: 'one of on, off, true, false, 1, 0',
  balanceFactor: `0 (off) or a number above 1 and at most ${BALANCE_FACTOR_MAX}, e.g. 1.25`,
} as const;

export function integerExpected(setting: IntegerSetting): string {
  const range: { min: number; max: number; zero?: string } = INTEGER_RANGES[setting];
  const zero = range.zero === undefined ? '' : ` (0 = ${range.zero})`;
  return `an integer from ${range.min} to ${range.max}${zero}`;
}

// ---------------------------------------------------------------- lists

/** Split a plain comma list: items trimmed, empty items dropped. */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/**
 * Split a comma list whose regex items may contain commas. `starts` are the prefixes
 * that begin an item; `regexItem` tells which items swallow following pieces that
 * begin no item.
 */
function splitRegexList(value: string, starts: readonly string[], regexItem: (item: string) => boolean): string[] {
  const items: string[] = [];
  for (const piece of value.split(',')) {
    const head = piece.trimStart();
    const last = items.length - 1;
    if (last >= 0 && regexItem(items[last]!.trimStart()) && !starts.some((s) => head.startsWith(s))) {
      items[last] += `,${piece}`;
    } else {
      items.push(piece);
    }
  }
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

const KEY_STARTS = ['source-ip', 'header:', 'cookie:', 'query:', 'path:'] as const;
const LEARN_STARTS = ['header:', 'set-cookie:'] as const;

/** `source-ip,path:^/a{1,3}/(x),header:X` -> `source-ip`, `path:^/a{1,3}/(x)`, `header:X`. */
export function splitKeyChain(value: string): string[] {
  return splitRegexList(value, KEY_STARTS, (item) => item.startsWith('path:'));
}

/** `header:Location=/f/([^,]+),set-cookie:sid` -> two rules. */
export function splitLearnRules(value: string): string[] {
  return splitRegexList(value, LEARN_STARTS, (item) => item.startsWith('header:'));
}

// ---------------------------------------------------------------- host:port

type HostPortProblem = 'shape' | 'port' | 'ipv6' | 'host' | 'nohost';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

function splitHostPort(text: string, minPort = 1): HostPort | HostPortProblem {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return 'shape';
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (isIP(host) !== 6) return 'host';
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return 'shape';
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return isIP(host) === 6 || isIP(text) === 6 ? 'ipv6' : 'shape';
    if (host === '') return 'nohost';
    // Dotted digits must be a whole IPv4 address, not a host name that DNS would guess at.
    if (/^[\d.]+$/.test(host) ? isIP(host) !== 4 : !HOSTNAME.test(host)) return 'host';
  }
  if (!/^\d{1,5}$/.test(portText)) return 'shape';
  const port = Number(portText);
  if (port < minPort || port > 65535) return 'port';
  return { host, port };
}

const HOST_PORT_EXPECTED: Record<HostPortProblem, string> = {
  shape: EXPECTED.hostPort,
  port: EXPECTED.hostPort,
  ipv6: EXPECTED.hostPortIpv6,
  host: EXPECTED.hostPortHost,
  nohost: EXPECTED.hostPortNoHost,
};

/** `127.0.0.1:7000`, `[::1]:7000`, `localhost:7000`: a host and a port from 1 to 65535. */
export function parseHostPort(variable: string, value: string): HostPort {
  const parsed = splitHostPort(value.trim());
  if (typeof parsed !== 'string') return parsed;
  throw new ConfigError(variable, value, HOST_PORT_EXPECTED[parsed]);
}

/**
 * Where tether listens. As parseHostPort, and also `:7000` for `0.0.0.0:7000` (all
 * IPv4 interfaces, like HAProxy's `bind :7000`; `[::]:7000` for IPv6) and port 0 for
 * a free port the system picks (tests, the demo).
 */
export function parseListen(variable: string, value: string): HostPort {
  const text = value.trim();
  const parsed = splitHostPort(/^:\d+$/.test(text) ? `0.0.0.0${text}` : text, 0);
  if (typeof parsed !== 'string') return parsed;
  throw new ConfigError(variable, value, parsed === 'shape' || parsed === 'port' ? EXPECTED.listen : HOST_PORT_EXPECTED[parsed]);
}

export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

// ---------------------------------------------------------------- integers, numbers, booleans

export function parseInteger(variable: string, value: string, setting: IntegerSetting): number {
  const range = INTEGER_RANGES[setting];
  const text = value.trim();
  const n = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= range.min && n <= range.max)) throw new ConfigError(variable, value, integerExpected(setting));
  return n;
}

/** `0` (off) or a number above 1, e.g. `1.25`. */
export function parseBalanceFactor(variable: string, value: string): number {
  const text = value.trim();
  const n = /^\d{1,6}(\.\d{1,12})?$/.test(text) ? Number(text) : Number.NaN;
  if (n === 0 || (n > 1 && n <= BALANCE_FACTOR_MAX)) return n;
  throw new ConfigError(variable, value, EXPECTED.balanceFactor);
}

export function parseBoolean(variable: string, value: string): boolean {
  switch (value.trim().toLowerCase()) {
    case 'on':
    case 'true':
    case '1':
      return true;
    case 'off':
    case 'false':
    case '0':
      return false;
    default:
      throw new ConfigError(variable, value, EXPECTED.boolean);
  }
}

// ---------------------------------------------------------------- enums

function oneOf<T extends string>(allowed: readonly T[], expected: string) {
  return (variable: string, value: string): T => {
    const text = value.trim();
    if ((allowed as readonly string[]).includes(text)) return text as T;
    throw new ConfigError(variable, value, expected);
  };
}

export const parseMode = oneOf<Mode>(['tcp', 'http'], EXPECTED.mode);
export const parseHash = oneOf<HashAlgorithm>(['ring', 'maglev', 'rendezvous', 'modulo'], EXPECTED.hash);
export const parseProxyProtocol = oneOf<ProxyProtocolOut>(['off', 'v1', 'v2'], EXPECTED.proxyProtocol);
export const parseAcceptProxy = oneOf<ProxyProtocolIn>(['off', 'v1', 'v2', 'any'], EXPECTED.acceptProxy);
export const parseLogLevel = oneOf<LogLevel>(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  EXPECTED.logLevel,
);

/** `off`, `tcp`, `http:/PATH`, `ws:/PATH`. */
export function parseHealth(variable: string, value: string): HealthCheck {
  const text = value.trim();
  if (text === 'off' || text === 'tcp') return { kind: text };
  const match = /^(http|ws):(\/[\x21-\x7e]*)$/.exec(text);
  if (match === null) throw new ConfigError(variable, value, EXPECTED.health);
  return { kind: match[1] as 'http' | 'ws', path: match[2]! };
}

export function formatHealth(health: HealthCheck): string {
  return health.kind === 'http' || health.kind === 'ws' ? `${health.kind}:${health.path}` : health.kind;
}

// ---------------------------------------------------------------- upstreams

const UPSTREAM_NAME = /^[A-Za-z0-9._:\-[\]]{1,128}$/;
const LISTENER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function parseUpstreamName(variable: string, value: string): string {
  if (!UPSTREAM_NAME.test(value)) throw new ConfigError(variable, value, EXPECTED.upstreamName);
  return value;
}

export function parseListenerName(variable: string, value: string): string {
  if (!LISTENER_NAME.test(value)) throw new ConfigError(variable, value, EXPECTED.listenerName);
  return value;
}

/** An upstream's address: like host:port but a host is required. */
export function parseUpstreamAddress(variable: string, value: string): HostPort {
  return parseHostPort(variable, value);
}

/** One `[name=]host:port[*weight]`. */
export function parseUpstream(variable: string, item: string): UpstreamSpec {
  const text = item.trim();
  const fail = (detail?: string): never => {
    throw new ConfigError(variable, item, detail === undefined ? EXPECTED.upstream : `${EXPECTED.upstream} with ${detail}`);
  };
  const eq = text.indexOf('=');
  const name = eq < 0 ? undefined : text.slice(0, eq).trim();
  let rest = eq < 0 ? text : text.slice(eq + 1).trim();
  let weight = 1;
  const star = rest.lastIndexOf('*');
  if (star >= 0) {
    const weightText = rest.slice(star + 1).trim();
    rest = rest.slice(0, star).trim();
    const w = /^\d{1,4}$/.test(weightText) ? Number(weightText) : Number.NaN;
    if (!(w >= INTEGER_RANGES.weight.min && w <= INTEGER_RANGES.weight.max)) fail('a weight from 1 to 256');
    weight = w;
  }
  const address = splitHostPort(rest);
  if (typeof address === 'string') {
    switch (address) {
      case 'port':
        return fail('a port from 1 to 65535');
      case 'ipv6':
        return fail('an IPv6 host in brackets, e.g. [::1]:5432');
      case 'host':
        return fail('a valid host name or IP address');
      case 'nohost':
        return fail('a host before the port');
      default:
        return fail();
    }
  }
  const upstream = { name: name ?? formatHostPort(address), host: address.host, port: address.port, weight };
  if (!UPSTREAM_NAME.test(upstream.name)) fail(EXPECTED.upstreamName);
  return upstream;
}

/** Throws on the first name used twice, naming it. */
export function checkUniqueUpstreams(upstreams: readonly UpstreamSpec[], variable: string): void {
  const index = duplicateIndex(upstreams.map((u) => u.name));
  if (index >= 0) throw new ConfigError(variable, upstreams[index]!.name, EXPECTED.uniqueUpstream);
}

/** Index of the first item that repeats an earlier one, or -1. */
export function duplicateIndex(names: readonly string[]): number {
  const seen = new Set<string>();
  for (let i = 0; i < names.length; i++) {
    if (seen.has(names[i]!)) return i;
    seen.add(names[i]!);
  }
  return -1;
}

/** `db1=10.0.0.1:5432*2, 10.0.0.2:5432`: at least one, names unique. */
export function parseUpstreams(variable: string, value: string): UpstreamSpec[] {
  const items = splitList(value);
  if (items.length === 0) throw new ConfigError(variable, value, EXPECTED.upstreams);
  const upstreams = items.map((item) => parseUpstream(variable, item));
  checkUniqueUpstreams(upstreams, variable);
  return upstreams;
}

export function formatUpstream(upstream: UpstreamSpec): string {
  const address = formatHostPort(upstream);
  const name = upstream.name === address ? '' : `${upstream.name}=`;
  const weight = upstream.weight === 1 ? '' : `*${upstream.weight}`;
  return `${name}${address}${weight}`;
}

// ---------------------------------------------------------------- keys and learn rules

/** RFC 9110 token: header names, cookie names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const QUERY_NAME = /^[^\s&=#]+$/;

/** Compile a regex that must have at least one capture group; null when it cannot. */
function captureRegex(source: string): RegExp | null {
  let pattern: RegExp;
  try {
    pattern = new RegExp(source);
  } catch {
    return null;
  }
  // Matching the empty string against `(?:src)|` reveals the group count.
  const groups = new RegExp(`(?:${source})|`).exec('')!.length - 1;
  return groups >= 1 ? pattern : null;
}

export function parseKeySource(variable: string, item: string): KeySource {
  const text = item.trim();
  if (text === 'source-ip') return { kind: 'source-ip' };
  const colon = text.indexOf(':');
  const kind = colon < 0 ? '' : text.slice(0, colon);
  const arg = text.slice(colon + 1);
  switch (kind) {
    case 'header':
      if (TOKEN.test(arg)) return { kind: 'header', name: arg.toLowerCase() };
      throw new ConfigError(variable, item, `header:NAME with NAME an HTTP header name`);
    case 'cookie':
      if (TOKEN.test(arg)) return { kind: 'cookie', name: arg };
      throw new ConfigError(variable, item, `cookie:NAME with NAME a cookie name`);
    case 'query':
      if (QUERY_NAME.test(arg)) return { kind: 'query', name: arg };
      throw new ConfigError(variable, item, `query:NAME with NAME a query parameter name`);
    case 'path': {
      const pattern = captureRegex(arg);
      if (pattern !== null) return { kind: 'path', pattern, source: arg };
      throw new ConfigError(variable, item, 'path:REGEX with a valid regular expression that has a capture group');
    }
    default:
      throw new ConfigError(variable, item, EXPECTED.keySource);
  }
}

/** The fallback chain: at least one source. */
export function parseKeyChain(variable: string, value: string): KeySource[] {
  const items = splitKeyChain(value);
  if (items.length === 0) throw new ConfigError(variable, value, EXPECTED.keyChain);
  return items.map((item) => parseKeySource(variable, item));
}

export function formatKeySource(source: KeySource): string {
  switch (source.kind) {
    case 'source-ip':
      return 'source-ip';
    case 'path':
      return `path:${source.source}`;
    default:
      return `${source.kind}:${source.name}`;
  }
}

export function parseLearnRule(variable: string, item: string): LearnRule {
  const text = item.trim();
  if (text.startsWith('set-cookie:')) {
    const name = text.slice('set-cookie:'.length);
    if (TOKEN.test(name)) return { kind: 'set-cookie', name };
    throw new ConfigError(variable, item, 'set-cookie:NAME with NAME a cookie name');
  }
  if (text.startsWith('header:')) {
    const rest = text.slice('header:'.length);
    const eq = rest.indexOf('=');
    const name = eq < 0 ? rest : rest.slice(0, eq);
    const source = eq < 0 ? '' : rest.slice(eq + 1);
    const pattern = TOKEN.test(name) ? captureRegex(source) : null;
    if (pattern !== null) return { kind: 'header', name: name.toLowerCase(), pattern, source };
    throw new ConfigError(
      variable,
      item,
      'header:NAME=REGEX with NAME an HTTP header name and a valid REGEX that has a capture group',
    );
  }
  throw new ConfigError(variable, item, EXPECTED.learnRule);
}

/** Possibly empty; `none` is the empty list. */
export function parseLearnRules(variable: string, value: string): LearnRule[] {
  if (value.trim() === 'none') return [];
  return splitLearnRules(value).map((item) => parseLearnRule(variable, item));
}

export function formatLearnRule(rule: LearnRule): string {
  return rule.kind === 'header' ? `header:${rule.name}=${rule.source}` : `set-cookie:${rule.name}`;
}

// ---------------------------------------------------------------- CIDRs

/** `10.0.0.0/8`, `fd00::/8`; a bare address is /32 or /128 (net/cidr.ts). */
export function parseCidr(variable: string, item: string): Cidr {
  const cidr = parseCidrText(item);
  if ('expected' in cidr) throw new ConfigError(variable, item, cidr.expected);
  return cidr;
}

/** Possibly empty; `none` is the empty list. */
export function parseCidrList(variable: string, value: string): Cidr[] {
  if (value.trim() === 'none') return [];
  return splitList(value).map((item) => parseCidr(variable, item));
}

// ---------------------------------------------------------------- store, admin

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

/** `host:port` or `off` (null). */
export function parseAdmin(variable: string, value: string): HostPort | null {
  if (value.trim() === 'off') return null;
  try {
    return parseListen(variable, value);
  } catch (error) {
    if (error instanceof ConfigError && error.expected === EXPECTED.listen) {
      throw new ConfigError(variable, value, EXPECTED.admin);
    }
    throw error;
  }
}

export function parseAdminToken(variable: string, value: string): string {
  if (!/^[\x21-\x7e]{1,4096}$/.test(value)) {
    // Never echo a secret: name the variable, not the value.
    throw new ConfigError(variable, '***', EXPECTED.adminToken);
  }
  return value;
}
