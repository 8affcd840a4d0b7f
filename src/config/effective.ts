/**
 * The effective settings as JSON, for `tether check`: the keys and value syntax of a
 * TETHER_CONFIG file (so the output reads like one), plus `configFile`. Secrets never
 * appear: the admin token is "***" when set, a Redis password (in the URL or
 * redis.sentinelPassword) is "***".
 */
import { formatHealth, formatHostPort } from './parse.js';
import { formatKeySource, formatLearnRule } from './parse-keys.js';
import type { Config, ListenerConfig } from './types.js';

export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };

export interface EffectiveSettings {
  readonly [key: string]: Json;
}

function listenerSettings(listener: ListenerConfig): EffectiveSettings {
  return {
    name: listener.name,
    listen: formatHostPort(listener.listen),
    mode: listener.mode,
    upstreams: listener.upstreams.map((u) => ({ name: u.name, address: formatHostPort(u), weight: u.weight })),
    key: listener.key.map(formatKeySource),
    hash: listener.hash,
    vnodes: listener.vnodes,
    balanceFactor: listener.balanceFactor,
    learn: listener.learn.map(formatLearnRule),
    stickyTtlS: listener.stickyTtlS,
    stick: listener.stick,
    inspectBytes: listener.inspectBytes,
    inspectTimeoutMs: listener.inspectTimeoutMs,
    proxyProtocol: listener.proxyProtocol,
    acceptProxy: listener.acceptProxy,
    trustedProxies: listener.trustedProxies.map((c) => c.source),
    health: formatHealth(listener.health),
    healthIntervalMs: listener.healthIntervalMs,
    healthTimeoutMs: listener.healthTimeoutMs,
    healthRise: listener.healthRise,
    healthFall: listener.healthFall,
    connectTimeoutMs: listener.connectTimeoutMs,
    retries: listener.retries,
    idleTimeoutMs: listener.idleTimeoutMs,
    headTimeoutMs: listener.headTimeoutMs,
    maxHeadBytes: listener.maxHeadBytes,
    maxConnections: listener.maxConnections,
  };
}

/** The `redis` object of the file, when the store is Sentinel or Cluster. */
function redisSettings(config: Config): EffectiveSettings {
  if (config.store.kind !== 'redis') return {};
  const topology = config.store.topology;
  switch (topology.kind) {
    case 'standalone':
      return {};
    case 'sentinel':
      return {
        redis: {
          sentinels: topology.sentinels.map(formatHostPort),
          ...(topology.sentinelPassword === null ? {} : { sentinelPassword: '***' }),
        },
      };
    case 'cluster':
      // Every startup node, the store URL's own first: read back, it is the same list.
      return { redis: { cluster: topology.nodes.map(formatHostPort) } };
  }
}

export function effectiveSettings(config: Config): EffectiveSettings {
  return {
    configFile: config.configFile,
    admin: config.admin === null ? 'off' : formatHostPort(config.admin),
    adminToken: config.adminToken === null ? null : '***',
    store: config.store.kind === 'memory' ? 'memory' : config.store.redacted,
    storeTimeoutMs: config.storeTimeoutMs,
    stickyMax: config.stickyMax,
    redisPrefix: config.redisPrefix,
    ...redisSettings(config),
    ringThreads: config.ringThreads,
    workers: config.workers,
    logLevel: config.logLevel,
    accessLog: config.accessLog,
    drainTimeoutMs: config.drainTimeoutMs,
    drainDelayMs: config.drainDelayMs,
    listeners: config.listeners.map(listenerSettings),
  };
}
