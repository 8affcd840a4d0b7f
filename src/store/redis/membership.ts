/** Shared membership in Redis: one hash per listener, written by script, announced on a channel (store.ts has the key layout). */
import { randomBytes } from 'node:crypto';
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
} from '../types.js';
import { type RedisClient } from './client.js';

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

export class RedisMembership implements MembershipStore {
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
   * Not before it is ready: ioredis lets SUBSCRIBE out while it still connects, and
   * then its own ready check (INFO) fails in subscriber mode, the connection never
   * counts as ready, and a later reconnect does not subscribe again (announcements
   * lost for good after a Redis restart).
   */
  #subscribeChannel(): void {
    if (this.#subscriber.status !== 'ready') {
      this.#subscriber.once('ready', () => this.#subscribeChannel());
      return;
    }
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
