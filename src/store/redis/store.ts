/**
 * The Redis store: learned pins and shared membership, for several tether instances
 * that must route alike.
 *
 * Keys (PREFIX is TETHER_REDIS_PREFIX, `tether:` by default):
 *   PREFIX pin:LISTENER:DIGEST      string, the upstream's name, with a TTL (SET EX,
 *                                   renewed by EXPIRE). DIGEST is sha256(key) in
 *                                   base64url: Redis never holds a raw session id.
 *   PREFIX membership:LISTENER      hash: `v` (version, bumped by every write),
 *                                   `m:UPSTREAM` (MemberRecord JSON), `d:UPSTREAM`
 *                                   (DrainRecord JSON). No TTL.
 *   PREFIX membership               pub/sub channel: {"from", "listener", "version"}
 *                                   after every write.
 * Every key is a single key (no multi-key command), so Redis Cluster needs no hash tags.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { isUpstreamName, isUpstreamWeight } from '../../config/upstream-rules.js';
import type {
  DrainRecord,
  MemberRecord,
  MemberSpec,
  MembershipHandlers,
  MembershipSnapshot,
  MembershipStore,
  MembershipWrite,
  PinStore,
  Store,
} from '../types.js';
import { createRedisClient, describeRedis, scrubSecrets, type RedisClient, type RedisStoreConfig } from './client.js';

export interface RedisStoreOptions {
  readonly config: RedisStoreConfig;
  /** TETHER_REDIS_PREFIX. */
  readonly prefix: string;
  /** Bound on any one command (a connection that hangs); see createRedisClient. */
  readonly commandTimeoutMs: number;
  readonly logger: Logger;
  /** Counts a failed connection attempt (tether_store_errors_total). */
  readonly onError: () => void;
}

/** A pin key as stored: hashed, so Redis never holds a raw key. */
export function pinDigest(key: string): string {
  return createHash('sha256').update(key).digest('base64url');
}

class RedisPins implements PinStore {
  readonly #client: RedisClient;
  readonly #prefix: string;

  constructor(client: RedisClient, prefix: string, listener: string) {
    this.#client = client;
    this.#prefix = `${prefix}pin:${listener}:`;
  }

  get(key: string): Promise<string | null> {
    return this.#client.get(this.#prefix + pinDigest(key));
  }

  async set(key: string, upstream: string, ttlS: number): Promise<void> {
    await this.#client.set(this.#prefix + pinDigest(key), upstream, 'EX', ttlS);
  }

  async touch(key: string, ttlS: number): Promise<void> {
    // EXPIRE on a key that is gone does nothing: an expired pin is not revived.
    await this.#client.expire(this.#prefix + pinDigest(key), ttlS);
  }

  async delete(key: string): Promise<void> {
    await this.#client.del(this.#prefix + pinDigest(key));
  }
}

/**
 * Apply field changes, bump the version, announce it, return the hash: one atomic
 * step, so the announcement and the state it announces cannot be told apart.
 * KEYS[1] hash; ARGV: channel, instance id, listener, then (op, field, value) triples.
 */
const WRITE_SCRIPT = `
for i = 4, #ARGV, 3 do
  if ARGV[i] == 'set' then
    redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HDEL', KEYS[1], ARGV[i + 1])
  end
end
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('PUBLISH', ARGV[1], cjson.encode({ from = ARGV[2], listener = ARGV[3], version = v }))
return redis.call('HGETALL', KEYS[1])
`;

/** Write the hash only when it is missing (the store lost it); announce it. */
const RESTORE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PUBLISH', ARGV[1], cjson.encode({ from = ARGV[2], listener = ARGV[3], version = tonumber(ARGV[4]) }))
return 1
`;

class RedisMembership implements MembershipStore {
  readonly instanceId: string;
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #logger: Logger;
  /** Fields already reported as unreadable, so a bad record is logged once. */
  readonly #reported = new Set<string>();

  constructor(client: RedisClient, subscriber: RedisClient, prefix: string, logger: Logger) {
    this.#client = client;
    this.#subscriber = subscriber;
    this.#prefix = prefix;
    this.#channel = `${prefix}membership`;
    this.#logger = logger;
    this.instanceId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  }

  get connected(): boolean {
    return this.#client.status === 'ready';
  }

  /** Wait until the store answers, at most `timeoutMs`; resolves whether it does. */
  ready(timeoutMs: number): Promise<boolean> {
    if (this.#client.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.#client.removeListener('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(done, timeoutMs, false);
      this.#client.on('ready', onReady);
    });
  }

  async load(listener: string): Promise<MembershipSnapshot> {
    const hash = await this.#client.hgetall(this.#key(listener));
    return this.#parse(listener, Object.entries(hash));
  }

  async write(listener: string, change: MembershipWrite): Promise<MembershipSnapshot> {
    const args: string[] = [this.#channel, this.instanceId, listener];
    const field = (name: string, record: MemberRecord | DrainRecord | null | undefined): void => {
      if (record === undefined) return;
      if (record === null) args.push('del', name, '');
      else args.push('set', name, JSON.stringify(record));
    };
    field(`m:${change.upstream}`, change.member);
    field(`d:${change.upstream}`, change.drain);
    const flat = (await this.#client.eval(WRITE_SCRIPT, 1, this.#key(listener), ...args)) as string[];
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i]!, flat[i + 1]!]);
    return this.#parse(listener, pairs);
  }

  async restore(listener: string, snapshot: MembershipSnapshot): Promise<boolean> {
    const fields: string[] = ['v', String(snapshot.version)];
    for (const [name, record] of snapshot.members) fields.push(`m:${name}`, JSON.stringify(record));
    for (const [name, record] of snapshot.drains) fields.push(`d:${name}`, JSON.stringify(record));
    const args = [this.#channel, this.instanceId, listener, String(snapshot.version), ...fields];
    return (await this.#client.eval(RESTORE_SCRIPT, 1, this.#key(listener), ...args)) === 1;
  }

  subscribe(handlers: MembershipHandlers): void {
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const parsed = parseAnnouncement(message);
      if (parsed !== null) handlers.onChange(parsed.listener, parsed.from, parsed.version);
    });
    // Either connection coming (back) may have missed announcements.
    this.#client.on('ready', () => handlers.onReady());
    this.#subscriber.on('ready', () => handlers.onReady());
    this.#subscribeChannel();
  }

  /**
   * ioredis subscribes again after every reconnect, but only once a first SUBSCRIBE
   * went through; until then, try again each time the connection is ready.
   */
  #subscribeChannel(): void {
    this.#subscriber.subscribe(this.#channel).catch(() => {
      this.#subscriber.once('ready', () => this.#subscribeChannel());
    });
  }

  #key(listener: string): string {
    return `${this.#prefix}membership:${listener}`;
  }

  /** Read fields defensively: a record another version wrote, or a person edited, may be off. */
  #parse(listener: string, entries: readonly (readonly [string, string])[]): MembershipSnapshot {
    let version = 0;
    const members = new Map<string, MemberRecord>();
    const drains = new Map<string, DrainRecord>();
    for (const [field, value] of entries) {
      if (field === 'v') {
        version = Number(value) || 0;
        continue;
      }
      const name = field.slice(2);
      const record = field.startsWith('m:') ? parseMember(value) : field.startsWith('d:') ? parseDrain(value) : null;
      if (record === null || !isUpstreamName(name)) {
        this.#reportUnreadable(listener, field);
        continue;
      }
      if (field.startsWith('m:')) members.set(name, record as MemberRecord);
      else drains.set(name, record as DrainRecord);
    }
    return { version, members, drains };
  }

  #reportUnreadable(listener: string, field: string): void {
    const id = `${listener}\n${field}`;
    if (this.#reported.has(id)) return;
    this.#reported.add(id);
    this.#logger.warn({ listener, field: field.slice(0, 200) }, 'ignoring a membership record in the store that it cannot read');
  }
}

function parseAnnouncement(message: string): { listener: string; from: string; version: number } | null {
  try {
    const data = JSON.parse(message) as Record<string, unknown>;
    if (typeof data.listener !== 'string' || typeof data.from !== 'string' || typeof data.version !== 'number') return null;
    return { listener: data.listener, from: data.from, version: data.version };
  } catch {
    return null;
  }
}

function parseJson(text: string): Record<string, unknown> | null {
  try {
    const data: unknown = JSON.parse(text);
    return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function parseSpec(value: unknown): MemberSpec | null {
  if (typeof value !== 'object' || value === null) return null;
  const { host, port, weight } = value as Record<string, unknown>;
  if (typeof host !== 'string' || host === '' || host.length > 255) return null;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  if (!isUpstreamWeight(weight)) return null;
  return { host, port, weight };
}

function parseMember(text: string): MemberRecord | null {
  const data = parseJson(text);
  if (data === null) return null;
  const member = data.member === 'removed' ? 'removed' : parseSpec(data.member);
  const base = data.base === null ? null : parseSpec(data.base);
  if (member === null || (base === null && data.base !== null)) return null;
  return { member, base, by: String(data.by ?? ''), at: Number(data.at) || 0 };
}

function parseDrain(text: string): DrainRecord | null {
  const data = parseJson(text);
  if (data === null) return null;
  const deadlineAt = data.deadlineAt;
  if (deadlineAt !== null && (typeof deadlineAt !== 'number' || !Number.isFinite(deadlineAt))) return null;
  return { deadlineAt, by: String(data.by ?? ''), at: Number(data.at) || 0 };
}

/**
 * Two connections: commands, and one in subscriber mode for announcements (Redis
 * takes no other command on a subscribed connection). Connection trouble is logged
 * once when it starts and once when it ends, counted every time.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly local = false;
  readonly membership: MembershipStore;
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #prefix: string;
  readonly #pins = new Map<string, RedisPins>();
  #closing = false;

  constructor(options: RedisStoreOptions) {
    const { config, logger } = options;
    this.#prefix = options.prefix;
    this.#client = createRedisClient(config, options.commandTimeoutMs);
    this.#subscriber = this.#client.duplicate();
    const where = describeRedis(config);
    let down = false;
    this.#client.on('ready', () => {
      if (down) logger.info({ redis: where }, 'store reachable again');
      else logger.info({ redis: where }, 'store connected');
      down = false;
    });
    this.#client.on('error', (err: Error) => {
      if (this.#closing) return;
      options.onError();
      if (down) return;
      down = true;
      logger.warn({ redis: where, error: scrubSecrets(err.message, config) }, 'store unreachable: routing by hash until it returns');
    });
    // Trouble shows on the command connection; this one's errors would only repeat it.
    this.#subscriber.on('error', () => {});
    this.membership = new RedisMembership(this.#client, this.#subscriber, options.prefix, logger);
  }

  pins(listener: string): PinStore {
    let pins = this.#pins.get(listener);
    if (pins === undefined) {
      pins = new RedisPins(this.#client, this.#prefix, listener);
      this.#pins.set(listener, pins);
    }
    return pins;
  }

  async close(): Promise<void> {
    this.#closing = true;
    // disconnect(), not quit(): quit waits for an answer a down Redis never gives.
    this.#subscriber.disconnect();
    this.#client.disconnect();
  }
}
