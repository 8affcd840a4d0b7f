/** The validated, frozen configuration. Produced only by config/load.ts. */
import type { Cidr } from '../net/types.js';

export type { Cidr } from '../net/types.js';

export interface HostPort {
  /** Host as given, without brackets for IPv6 ("::", "127.0.0.1", "localhost"). */
  readonly host: string;
  readonly port: number;
}

export interface UpstreamSpec extends HostPort {
  /** Identity of the upstream: ring points derive from it. Defaults to "host:port". */
  readonly name: string;
  /** 1-256. */
  readonly weight: number;
}

export type Mode = 'tcp' | 'http';
export type HashAlgorithm = 'ring' | 'maglev' | 'rendezvous' | 'modulo';

export type KeySource =
  | { readonly kind: 'source-ip' }
  | { readonly kind: 'header'; readonly name: string } // name lower-cased
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'query'; readonly name: string }
  | { readonly kind: 'path'; readonly pattern: RegExp; readonly source: string }
  // tcp mode: read from the connection's first bytes (proxy/tcp/inspect/).
  | { readonly kind: 'sni' }
  | { readonly kind: 'mqtt'; readonly field: 'client-id' | 'username' }
  | { readonly kind: 'rdp-cookie' }
  | { readonly kind: 'prefix'; readonly source: string };

export type LearnRule =
  | { readonly kind: 'header'; readonly name: string; readonly pattern: RegExp; readonly source: string }
  | { readonly kind: 'set-cookie'; readonly name: string };

export type HealthCheck =
  | { readonly kind: 'off' }
  | { readonly kind: 'tcp' }
  | { readonly kind: 'http'; readonly path: string }
  | { readonly kind: 'ws'; readonly path: string };

export type ProxyProtocolOut = 'off' | 'v1' | 'v2';
export type ProxyProtocolIn = 'off' | 'v1' | 'v2' | 'any';

export interface ListenerConfig {
  readonly name: string;
  readonly listen: HostPort;
  readonly mode: Mode;
  readonly upstreams: readonly UpstreamSpec[];
  readonly key: readonly KeySource[];
  readonly hash: HashAlgorithm;
  readonly vnodes: number;
  /** 0 = off; otherwise > 1. */
  readonly balanceFactor: number;
  readonly learn: readonly LearnRule[];
  readonly stickyTtlS: number;
  /** TETHER_STICK: the upstream a key is first routed to becomes a learned pin. */
  readonly stick: boolean;
  /** tcp mode: the most bytes read, and the longest wait, for a first-bytes key. */
  readonly inspectBytes: number;
  readonly inspectTimeoutMs: number;
  readonly proxyProtocol: ProxyProtocolOut;
  readonly acceptProxy: ProxyProtocolIn;
  readonly trustedProxies: readonly Cidr[];
  readonly health: HealthCheck;
  readonly healthIntervalMs: number;
  readonly healthTimeoutMs: number;
  readonly healthRise: number;
  readonly healthFall: number;
  readonly connectTimeoutMs: number;
  readonly retries: number;
  /** 0 = never. */
  readonly idleTimeoutMs: number;
  readonly headTimeoutMs: number;
  readonly maxHeadBytes: number;
  readonly maxConnections: number;
}

/** How tether finds Redis: the `redis` object of the TETHER_CONFIG file. */
export type RedisTopology =
  | { readonly kind: 'standalone' }
  | {
      readonly kind: 'sentinel';
      /** The master group name: the host part of the store URL, case kept. */
      readonly name: string;
      readonly sentinels: readonly HostPort[];
      /** A secret, as the URL's password: never log it. */
      readonly sentinelPassword: string | null;
    }
  | {
      readonly kind: 'cluster';
      /** Startup nodes: the store URL's host:port first, then `redis.cluster`. */
      readonly nodes: readonly HostPort[];
    };

export type StoreConfig =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'redis';
      /** The URL as given; contains the password: never log it, log `redacted`. */
      readonly url: string;
      readonly redacted: string;
      readonly topology: RedisTopology;
    };

export interface Config {
  readonly listeners: readonly ListenerConfig[];
  /** null when TETHER_ADMIN=off. */
  readonly admin: HostPort | null;
  readonly adminToken: string | null;
  readonly store: StoreConfig;
  readonly storeTimeoutMs: number;
  /** The most pins the memory store holds; least recently used go first. */
  readonly stickyMax: number;
  /** Prepended to every Redis key and channel tether uses (TETHER_REDIS_PREFIX). */
  readonly redisPrefix: string;
  readonly ringThreads: number;
  /**
   * TETHER_WORKERS: relaying processes. 1 = one process does everything; more = a
   * control plane plus that many workers (src/workers/); `auto` = one per CPU.
   */
  readonly workers: number | 'auto';
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly accessLog: boolean;
  readonly drainTimeoutMs: number;
  /** On SIGTERM: not ready at once, still accepting this long, then stop accepting and drain. */
  readonly drainDelayMs: number;
  /** Path of the TETHER_CONFIG file, if any (SIGHUP re-reads it). */
  readonly configFile: string | null;
}
