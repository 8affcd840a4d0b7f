/** Types routing shares with the proxy, admin and the app. */
import type { Algorithm } from '../hashing/types.js';
import type { Upstream } from './upstream.js';

/** Which link of the key chain gave a connection's or request's key (`none`: no key). */
export type KeySourceName =
  | 'source-ip'
  | 'header'
  | 'cookie'
  | 'query'
  | 'path'
  | 'sni'
  | 'mqtt:client-id'
  | 'mqtt:username'
  | 'rdp-cookie'
  | 'prefix'
  | 'learned'
  | 'none';

export type RouteVia = 'learned' | 'hash' | 'p2c';

export interface RouteDecision {
  readonly via: RouteVia;
  /** Upstreams to try in order: the choice first, then the next in hash order. */
  readonly candidates: Upstream[];
}

export interface PoolOptions {
  readonly algorithm: Algorithm;
  readonly vnodes: number;
  /** 0 = off; else c > 1 (bounded loads). */
  readonly balanceFactor: number;
}

export interface MembershipEvent {
  readonly upstream: string;
  readonly change: 'added' | 'removed' | 'changed' | 'up' | 'down' | 'draining' | 'undrained';
  readonly detail?: string;
}

/** Where the pool's table stands; for tests, logs and the admin API. */
export interface TableStatus {
  /** Bumped by every change a table depends on (membership, health, drain, weight, algorithm). */
  readonly version: number;
  /** The version the table in use was built for; -1 before the first. */
  readonly tableVersion: number;
  readonly building: boolean;
  /** Failed builds in a row (0 once one succeeds). */
  readonly failures: number;
}

/** A message head's fields as the key chain and learn rules read them. */
export interface HeadFields {
  /** The values of every field named `name` (lower case), in order; empty when none. */
  values(name: string): readonly string[];
}

/** What an HTTP request head offers the key chain. */
export interface RequestHead extends HeadFields {
  /** The request target as sent: path and query. */
  readonly target: string;
}
