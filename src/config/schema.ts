/**
 * zod schemas for settings given as JSON: the TETHER_CONFIG file, config/defaults.json,
 * and (as strings) the environment. One schema per setting, so a value means the same
 * wherever it comes from.
 *
 * The TETHER_CONFIG file (see config/example.json):
 *
 *   {
 *     "$comment": "...",                  // allowed anywhere an object is; ignored
 *     "admin": "127.0.0.1:7001",          // process settings, top level only:
 *     "adminToken": null,                 //   admin adminToken store storeTimeoutMs stickyMax
 *     "store": "memory",                  //   ringThreads logLevel accessLog drainTimeoutMs
 *                                         //   drainDelayMs workers
 *     "hash": "ring",                     // a listener setting at top level is the
 *                                         //   default for every listener
 *     "listeners": [ { "name": "pg", "listen": "127.0.0.1:6432", "upstreams": [...] } ],
 *     "redis": { "sentinels": [...] }     // Sentinel or Cluster: see redisSchema below
 *   }
 *
 * - Keys are the camelCase of the TETHER_* variables (TETHER_STICKY_TTL_S ->
 *   stickyTtlS). Unknown keys are errors, so typos do not pass silently.
 * - Every value may be the string the variable takes. Numbers may also be JSON
 *   numbers, accessLog a JSON boolean, admin and adminToken null (off / none).
 * - Lists (upstreams, key, learn, trustedProxies) may be JSON arrays of items or one
 *   comma string. An upstream item is a string `[name=]host:port[*weight]` or an
 *   object `{ "name"?, "address": "host:port", "weight"? }`.
 * - `listeners` may be missing or empty: then there is one listener, made of the
 *   top-level settings and the environment. Listener names default to "default" for
 *   the first and "listener-N" (N counted from 1) for the others.
 */
import * as z from 'zod';
import { ConfigError } from '../errors.js';
import {
  EXPECTED,
  formatHostPort,
  integerExpected,
  parseAcceptProxy,
  parseAdmin,
  parseAdminToken,
  parseBalanceFactor,
  parseBoolean,
  parseCidr,
  parseHash,
  parseHealth,
  parseInteger,
  parseListen,
  parseListenerName,
  parseLogLevel,
  parseMode,
  parseProxyProtocol,
  parseWorkers,
  splitList,
  type IntegerSetting,
} from './parse.js';
import { duplicateIndex, parseUpstream, parseUpstreamAddress, parseUpstreamName } from './parse-upstreams.js';
import { parseKeySource, parseLearnRule, splitKeyChain, splitLearnRules } from './parse-keys.js';
import { parseRedisPassword, parseRedisPrefix, parseStore, redactRedisUrl } from './parse-store.js';

/** Parsers want a name to blame; in a schema the issue path does the naming. */
const HERE = 'TETHER_CONFIG';

/** Run a parse.ts parser inside zod: its ConfigError becomes an issue at this path. */
function via<S extends z.ZodType, O>(schema: S, parse: (value: z.output<S>) => O) {
  return schema.transform((value, ctx): O => {
    try {
      return parse(value);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      ctx.issues.push({ code: 'custom', message: error.expected, input: error.value });
      return z.NEVER;
    }
  });
}

/** on/off settings: a JSON boolean or the string the variable takes. */
const onOff = () =>
  via(z.union([z.boolean(), z.string(), z.number()], { error: EXPECTED.boolean }), (v) =>
    typeof v === 'boolean' ? v : parseBoolean(HERE, String(v)),
  );
const text = (expected: string) => z.string({ error: expected });
const scalar = (expected: string) => z.union([z.string(), z.number()], { error: expected });
const integer = (setting: IntegerSetting) =>
  via(scalar(integerExpected(setting)), (v) => parseInteger(HERE, String(v), setting));

/**
 * A list given as a JSON array or as one comma string (split by `split`). `none` is
 * the empty list where empty lists are allowed; elsewhere an empty list is refused
 * here, quoting what was given.
 */
function list<T extends z.ZodType>(
  split: (value: string) => string[],
  item: T,
  expected: string,
  options: { readonly allowEmpty: boolean },
) {
  return z.preprocess((value, ctx) => {
    const items = typeof value !== 'string' ? value : options.allowEmpty && value.trim() === 'none' ? [] : split(value);
    if (!options.allowEmpty && Array.isArray(items) && items.length === 0) {
      ctx.issues.push({ code: 'custom', message: expected, input: value });
    }
    return items;
  }, z.array(item, { error: expected }));
}

const comment = z.union([z.string(), z.array(z.string())], { error: 'a string or a list of strings' });

// ---------------------------------------------------------------- upstreams

const upstreamObject = z
  .strictObject(
    {
      $comment: comment.optional(),
      name: via(text(EXPECTED.upstreamName), (v) => parseUpstreamName(HERE, v)).optional(),
      address: via(text(EXPECTED.hostPort), (v) => parseUpstreamAddress(HERE, v)),
      weight: integer('weight').optional(),
    },
    { error: 'an upstream' },
  )
  .transform((o) => ({
    name: o.name ?? formatHostPort(o.address),
    host: o.address.host,
    port: o.address.port,
    weight: o.weight ?? 1,
  }));

const upstreamItem = z.union(
  [via(z.string(), (v) => parseUpstream(HERE, v)), upstreamObject],
  { error: `an upstream: "${EXPECTED.upstream}" or {"name", "address", "weight"}` },
);

const upstreams = list(splitList, upstreamItem, EXPECTED.upstreams, { allowEmpty: false }).superRefine((items, ctx) => {
    const index = duplicateIndex(items.map((u) => u.name));
    if (index >= 0) {
      ctx.addIssue({ code: 'custom', message: EXPECTED.uniqueUpstream, input: items[index]!.name, path: [index] });
    }
  });

// ---------------------------------------------------------------- settings

/** Settings of one listener; at the top level of a file, defaults for all of them. */
export const listenerSettings = {
  listen: via(text(EXPECTED.listen), (v) => parseListen(HERE, v)),
  mode: via(text(EXPECTED.mode), (v) => parseMode(HERE, v)),
  upstreams,
  key: list(splitKeyChain, via(text(EXPECTED.keySource), (v) => parseKeySource(HERE, v)), EXPECTED.keyChain, {
    allowEmpty: false,
  }),
  hash: via(text(EXPECTED.hash), (v) => parseHash(HERE, v)),
  vnodes: integer('vnodes'),
  balanceFactor: via(scalar(EXPECTED.balanceFactor), (v) => parseBalanceFactor(HERE, String(v))),
  learn: list(splitLearnRules, via(text(EXPECTED.learnRule), (v) => parseLearnRule(HERE, v)), EXPECTED.learnRules, {
    allowEmpty: true,
  }),
  stickyTtlS: integer('stickyTtlS'),
  stick: onOff(),
  inspectBytes: integer('inspectBytes'),
  inspectTimeoutMs: integer('inspectTimeoutMs'),
  proxyProtocol: via(text(EXPECTED.proxyProtocol), (v) => parseProxyProtocol(HERE, v)),
  acceptProxy: via(text(EXPECTED.acceptProxy), (v) => parseAcceptProxy(HERE, v)),
  trustedProxies: list(splitList, via(text(EXPECTED.cidr), (v) => parseCidr(HERE, v)), EXPECTED.cidrs, {
    allowEmpty: true,
  }),
  health: via(text(EXPECTED.health), (v) => parseHealth(HERE, v)),
  healthIntervalMs: integer('healthIntervalMs'),
  healthTimeoutMs: integer('healthTimeoutMs'),
  healthRise: integer('healthRise'),
  healthFall: integer('healthFall'),
  connectTimeoutMs: integer('connectTimeoutMs'),
  retries: integer('retries'),
  idleTimeoutMs: integer('idleTimeoutMs'),
  headTimeoutMs: integer('headTimeoutMs'),
  maxHeadBytes: integer('maxHeadBytes'),
  maxConnections: integer('maxConnections'),
};

/** Settings of the process: top level of a file only. */
export const processSettings = {
  admin: via(z.union([z.string(), z.null()], { error: EXPECTED.admin }), (v) => (v === null ? null : parseAdmin(HERE, v))),
  adminToken: via(z.union([z.string(), z.null()], { error: EXPECTED.adminToken }), (v) =>
    v === null ? null : parseAdminToken(HERE, v),
  ),
  store: via(text(EXPECTED.store), (v) => parseStore(HERE, v)),
  storeTimeoutMs: integer('storeTimeoutMs'),
  stickyMax: integer('stickyMax'),
  redisPrefix: via(text(EXPECTED.redisPrefix), (v) => parseRedisPrefix(HERE, v)),
  ringThreads: integer('ringThreads'),
  workers: via(scalar(EXPECTED.workers), (v) => parseWorkers(HERE, String(v))),
  logLevel: via(text(EXPECTED.logLevel), (v) => parseLogLevel(HERE, v)),
  accessLog: onOff(),
  drainTimeoutMs: integer('drainTimeoutMs'),
  drainDelayMs: integer('drainDelayMs'),
};

export type ListenerSettingKey = keyof typeof listenerSettings;
export type ProcessSettingKey = keyof typeof processSettings;
export const LISTENER_SETTING_KEYS = Object.keys(listenerSettings) as ListenerSettingKey[];
export const PROCESS_SETTING_KEYS = Object.keys(processSettings) as ProcessSettingKey[];

const listenerName = via(text(EXPECTED.listenerName), (v) => parseListenerName(HERE, v));

export const listenerSchema = z
  .strictObject({ $comment: comment, name: listenerName, ...listenerSettings }, { error: 'an object of listener settings' })
  .partial();

/** A Redis node: "host:port" or { "host", "port" } (the shape ioredis takes). */
const redisNode = z.union(
  [
    via(z.string(), (v) => parseUpstreamAddress(HERE, v)),
    via(
      z.strictObject({ host: z.string(), port: z.union([z.number(), z.string()]) }, { error: 'a node' }),
      (o) => parseUpstreamAddress(HERE, formatHostPort({ host: o.host.replace(/^\[(.*)\]$/, '$1'), port: Number(o.port) })),
    ),
  ],
  { error: `a node: "host:port" or {"host", "port"}` },
);

const redisNodes = (what: string) =>
  list(splitList, redisNode, `${EXPECTED.redisNodes} (${what})`, { allowEmpty: false });

/**
 * How to reach Redis when it is not one server (the store URL's host and port):
 *   { "sentinels": ["10.0.0.1:26379", ...], "sentinelPassword"?: "..." }
 *      Sentinel: the store URL's host part is the master group name
 *      (redis://:PASSWORD@mymaster/0, as redis-rb and Sidekiq spell it);
 *   { "cluster": ["10.0.0.2:7000", ...] }
 *      Cluster: startup nodes besides the store URL's host:port.
 * The URL's user, password and scheme (rediss: TLS) apply to the data nodes.
 */
export const redisSchema = z
  .strictObject(
    {
      $comment: comment,
      sentinels: redisNodes('Sentinel addresses'),
      sentinelPassword: via(z.unknown(), (v) => parseRedisPassword(HERE, v)),
      cluster: redisNodes('Cluster nodes'),
    },
    { error: 'an object of Redis options: sentinels, sentinelPassword, cluster' },
  )
  .partial()
  .superRefine((o, ctx) => {
    if (o.sentinels !== undefined && o.cluster !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'either sentinels or cluster, not both', input: 'cluster', path: ['cluster'] });
    }
    if (o.sentinelPassword !== undefined && o.sentinels === undefined) {
      ctx.addIssue({ code: 'custom', message: 'set only with sentinels', input: '***', path: ['sentinelPassword'] });
    }
  });

export const fileSchema = z
  .strictObject({
    $comment: comment,
    ...processSettings,
    ...listenerSettings,
    listeners: z.array(listenerSchema, { error: 'a list of listener objects' }),
    redis: redisSchema,
  })
  .partial();

/** The environment, as strings under the same keys. */
export const envSchema = z.strictObject({ ...processSettings, ...listenerSettings }).partial();

export type FileSettings = z.output<typeof fileSchema>;
export type ListenerFileSettings = z.output<typeof listenerSchema>;
export type EnvSettings = z.output<typeof envSchema>;

// ---------------------------------------------------------------- issues -> problems

/** A zod issue brought to what a ConfigError needs. */
export interface SettingProblem {
  readonly path: readonly PropertyKey[];
  readonly value: unknown;
  readonly expected: string;
}

/**
 * The problem to report: an unknown key first (a typo explains the rest), else the
 * first issue. A union that failed is followed into the branch whose type matched,
 * so `"upstreams": ["db1"]` reports the string parser's complaint, not the union's.
 */
export function firstProblem(error: z.ZodError): SettingProblem {
  const issues = error.issues;
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
  return toProblem(issue, []);
}

function toProblem(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): SettingProblem {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    return { path, value: key, expected: unknownKeyExpected(path, key) };
  }
  if (issue.code === 'invalid_union') {
    for (const branch of issue.errors) {
      const typeMatched = !branch.some((i) => i.code === 'invalid_type' && i.path.length === 0);
      if (typeMatched && branch.length > 0) return toProblem(branch[0]!, path);
    }
  }
  // A parser's own complaint (custom) carries a value it already redacted; anything
  // else (a number or an array where a token was wanted, a URL where the redis object
  // goes) would echo the raw secret.
  return { path, value: issue.code === 'custom' ? issue.input : redactSecret(path[0], issue.input), expected: issue.message };
}

/** Settings whose values are secrets or may hold one (a Redis password): never echoed raw. */
const SECRET_SETTINGS: ReadonlySet<PropertyKey> = new Set<ProcessSettingKey>(['adminToken', 'store']);

function redactSecret(setting: PropertyKey | undefined, value: unknown): unknown {
  if (setting !== undefined && SECRET_SETTINGS.has(setting)) return '***';
  if (setting !== 'redis') return value;
  // The redis object holds a sentinel password: a string in its place may be a URL
  // with one, and a list or object may hold either.
  if (typeof value === 'string') return redactRedisUrl(value);
  return value !== null && typeof value === 'object' ? '***' : value;
}

// ---------------------------------------------------------------- unknown keys

const TOP_KEYS = Object.keys(fileSchema.shape);
const LISTENER_KEYS = Object.keys(listenerSchema.shape);
const UPSTREAM_KEYS = ['$comment', 'name', 'address', 'weight'];
const REDIS_KEYS = Object.keys(redisSchema.shape);

function normalise(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '').replace(/^tether/, '');
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name closest to `name` (case, `_`, `-` and a TETHER_ prefix ignored), if close. */
export function closest(name: string, known: readonly string[]): string | undefined {
  const wanted = normalise(name);
  let best: string | undefined;
  let bestDistance = wanted.length <= 4 ? 1 : 2;
  for (const candidate of known) {
    const d = distance(wanted, normalise(candidate));
    if (d < bestDistance || (d === bestDistance && best === undefined)) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function unknownKeyExpected(path: readonly PropertyKey[], key: string): string {
  const inListener = path.length === 2 && path[0] === 'listeners';
  const inUpstream = path.length >= 2 && path[path.length - 2] === 'upstreams';
  const inRedis = path.length === 1 && path[0] === 'redis';
  const known = inUpstream ? UPSTREAM_KEYS : inListener ? LISTENER_KEYS : inRedis ? REDIS_KEYS : TOP_KEYS;
  if (inListener && (PROCESS_SETTING_KEYS as string[]).includes(key)) {
    return 'a listener setting (it is a process setting: put it at the top level)';
  }
  const guess = closest(key, known);
  return guess === undefined ? 'a known setting' : `a known setting (did you mean "${guess}"?)`;
}
