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
 * - Upstream lists, key chains and learn rules, and the store settings are parsed in
 *   parse-upstreams.ts, parse-keys.ts and parse-store.ts; CIDRs in net/cidr.ts.
 * - A CIDR with host bits set (`10.0.0.1/8`) is refused with the network it probably
 *   meant, rather than silently widened.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { CIDR_EXPECTED, parseCidrText } from '../net/cidr.js';
import { UPSTREAM_WEIGHT } from './upstream-rules.js';
import type {
  Cidr,
  HashAlgorithm,
  HealthCheck,
  HostPort,
  Mode,
  ProxyProtocolIn,
  ProxyProtocolOut,
} from './types.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Integer settings: inclusive ranges and what 0 means where it is allowed. */
export const INTEGER_RANGES = {
  vnodes: { min: 1, max: 10_000 },
  stickyTtlS: { min: 1, max: 31_536_000 },
  stickyMax: { min: 1, max: 100_000_000 },
  inspectBytes: { min: 64, max: 1_048_576 },
  inspectTimeoutMs: { min: 1, max: 60_000 },
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
  drainDelayMs: { min: 0, max: 86_400_000, zero: 'stop accepting at once' },
  ringThreads: { min: 0, max: 64, zero: 'build on the main thread' },
  workers: { min: 1, max: 256 },
  weight: UPSTREAM_WEIGHT,
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
  keySource: 'one of source-ip, header:NAME, cookie:NAME, query:NAME, path:REGEX, sni, mqtt:client-id, mqtt:username, rdp-cookie, prefix:REGEX',
  keyChain: 'a comma list of source-ip, header:NAME, cookie:NAME, query:NAME, path:REGEX, sni, mqtt:client-id, mqtt:username, rdp-cookie, prefix:REGEX',
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
  workers: 'auto (one per CPU) or an integer from 1 to 256',
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

// ---------------------------------------------------------------- host:port

export type HostPortProblem = 'shape' | 'port' | 'ipv6' | 'host' | 'nohost';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

export function splitHostPort(text: string, minPort = 1): HostPort | HostPortProblem {
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

/** TETHER_WORKERS: `auto` (one relaying process per CPU, resolved at start) or 1-256. */
export function parseWorkers(variable: string, value: string): number | 'auto' {
  const text = value.trim();
  if (text === 'auto') return 'auto';
  const { min, max } = INTEGER_RANGES.workers;
  const n = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (n >= min && n <= max) return n;
  throw new ConfigError(variable, value, EXPECTED.workers);
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

// ---------------------------------------------------------------- names

const LISTENER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function parseListenerName(variable: string, value: string): string {
  if (!LISTENER_NAME.test(value)) throw new ConfigError(variable, value, EXPECTED.listenerName);
  return value;
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

// ---------------------------------------------------------------- admin

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
