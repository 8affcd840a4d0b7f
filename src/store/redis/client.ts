/**
 * ioredis clients for the store: standalone, Sentinel or Cluster, all set to fail
 * fast. A command never waits for a connection (no offline queue), a command in
 * flight when the connection drops fails at once (no retries), and reconnects back
 * off up to 2 s, for ever: Redis coming back needs no restart.
 */
import { createRequire } from 'node:module';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { formatHostPort } from '../../config/parse.js';
import type { RedisTopology, StoreConfig } from '../../config/types.js';

export type RedisStoreConfig = Extract<StoreConfig, { kind: 'redis' }>;
export type RedisClient = Redis | Cluster;

/** Time to set up a TCP (and TLS) connection before trying again. */
export const CONNECT_TIMEOUT_MS = 2_000;
const MAX_BACKOFF_MS = 2_000;

/** 100, 200, 400 ... 2000 ms: quick after a blip, gentle on a Redis that stays down. */
export function backoff(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(attempt - 1, 5));
}

interface UrlParts {
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly db: number;
  readonly tls: boolean;
}

/** The store URL taken apart; user and password percent-decoded. */
export function redisUrlParts(url: string): UrlParts {
  const parsed = new URL(url);
  const db = parsed.pathname.replace(/^\//, '');
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    db: db === '' ? 0 : Number(db),
    tls: parsed.protocol === 'rediss:',
  };
}

/**
 * ioredis, loaded on first use: a quarter of a second of start-up (more on a busy
 * host) that the memory store never needs, and that a replacement worker of
 * TETHER_WORKERS must not pay before it accepts.
 */
function loadIoredis(): typeof import('ioredis') {
  return createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
}

/**
 * `commandTimeoutMs` bounds every command on a connection that hangs (Redis stopped
 * answering but the socket is open); callers that must answer sooner race their own
 * timer (guard.ts).
 */
export function createRedisClient(config: RedisStoreConfig, commandTimeoutMs: number): RedisClient {
  const { Cluster, Redis } = loadIoredis();
  const url = redisUrlParts(config.url);
  const common: RedisOptions = {
    username: url.username,
    password: url.password,
    connectionName: 'tether',
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 0,
    enableReadyCheck: true,
    autoResubscribe: true,
  };
  const topology = config.topology;
  switch (topology.kind) {
    case 'standalone':
      return new Redis({
        ...common,
        host: url.host,
        port: url.port,
        db: url.db,
        tls: url.tls ? { servername: url.host } : undefined,
        enableOfflineQueue: false,
        retryStrategy: backoff,
      });
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: topology.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: topology.name,
        sentinelPassword: topology.sentinelPassword ?? undefined,
        db: url.db,
        tls: url.tls ? {} : undefined,
        enableTLSForSentinelMode: url.tls,
        enableOfflineQueue: false,
        retryStrategy: backoff,
        sentinelRetryStrategy: backoff,
        // Reconnect to the new master as soon as a sentinel announces a failover.
        failoverDetector: true,
      });
    case 'cluster': {
      const options: ClusterOptions = {
        redisOptions: { ...common, tls: url.tls ? {} : undefined },
        enableOfflineQueue: false,
        enableReadyCheck: true,
        clusterRetryStrategy: backoff,
        slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      };
      return new Cluster(topology.nodes.map((n) => ({ host: n.host, port: n.port })), options);
    }
  }
}

/** Where the store is, for logs and `tether check`: the password is never in it. */
export function describeRedis(config: RedisStoreConfig): string {
  const topology: RedisTopology = config.topology;
  switch (topology.kind) {
    case 'standalone':
      return config.redacted;
    case 'sentinel':
      return `${config.redacted} via sentinels ${topology.sentinels.map(formatHostPort).join(',')}`;
    case 'cluster':
      return `cluster ${topology.nodes.map(formatHostPort).join(',')}`;
  }
}

/** An error text with any password it might quote replaced (defence in depth: logs). */
export function scrubSecrets(text: string, config: RedisStoreConfig): string {
  const secrets = [redisUrlParts(config.url).password, config.topology.kind === 'sentinel' ? config.topology.sentinelPassword : null];
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('***');
  return out;
}
