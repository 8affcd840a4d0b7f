/**
 * Where learned pins live. A pin maps an affinity key (a session id, an upload id:
 * a secret, never logged) to the name of the upstream that holds its state, and
 * expires `ttlS` seconds after its last use.
 *
 * The interface is the whole plug-in surface (as piscina's TaskQueue is): one shared
 * test suite runs against every backend.
 */
export interface PinStore {
  /** The upstream pinned to `key`, or null. */
  get(key: string): Promise<string | null>;
  /** Pin `key` to `upstream` for `ttlS` seconds (replacing any pin it had). */
  set(key: string, upstream: string, ttlS: number): Promise<void>;
  /** Renew the pin's TTL, if it still exists. */
  touch(key: string, ttlS: number): Promise<void>;
  delete(key: string): Promise<void>;
}

/**
 * Pins that answer within the call (the memory store). The hot paths use these when a
 * store has them: no promise per lookup, and a response that teaches a pin goes on in
 * the same turn of the event loop.
 */
export interface ImmediatePins {
  getNow(key: string): string | null;
  setNow(key: string, upstream: string, ttlS: number): void;
  touchNow(key: string, ttlS: number): void;
  deleteNow(key: string): void;
}

/**
 * Pins a process holds a copy of (the workers' cache of the control plane's pins): a
 * pin found here is used at once, renewed in the background; one not found here may
 * still exist elsewhere, so the caller asks `get`.
 */
export interface CachedPins {
  /** The pin as this process holds it now, or null when it does not know. */
  cached(key: string): string | null;
  /** Renew a cached pin's TTL, here at once and with the holder soon. */
  renew(key: string, ttlS: number): void;
}

export interface Store {
  readonly kind: 'memory' | 'redis';
  /**
   * True when every call settles within the current turn of the event loop (no
   * network), so callers need no timer to bound it.
   */
  readonly local: boolean;
  /** The pins of one listener: listeners never see each other's pins. */
  pins(listener: string): PinStore;
  /**
   * Admin membership changes shared with every instance on the same store; null when
   * nothing is shared (memory: changes stay in this process, as they always did).
   */
  readonly membership: MembershipStore | null;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- shared membership

/** An upstream's address and weight, as the file or the admin API gives them. */
export interface MemberSpec {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

/**
 * The admin's word on an upstream's membership (PUT: an address and weight; DELETE:
 * removed), and what this instance's file said of it at the time (`base`, null when
 * the file did not have it). The admin's word holds until the file says something
 * else of that upstream: then the file wins (see membership/overrides.ts).
 */
export interface MemberRecord {
  readonly member: MemberSpec | 'removed';
  readonly base: MemberSpec | null;
  /** Instance id that made the change, and when (epoch ms): for people reading Redis. */
  readonly by: string;
  readonly at: number;
}

/** An admin drain, shared; `deadlineAt` is epoch ms (every instance closes then), or null. */
export interface DrainRecord {
  readonly deadlineAt: number | null;
  readonly by: string;
  readonly at: number;
}

/** Everything the store holds for one listener's membership. */
export interface MembershipSnapshot {
  /** Bumped by every write; 0 when nothing is stored. */
  readonly version: number;
  readonly members: ReadonlyMap<string, MemberRecord>;
  readonly drains: ReadonlyMap<string, DrainRecord>;
}

/** One admin change as written: each field replaced (a record) or cleared (null). */
export interface MembershipWrite {
  readonly upstream: string;
  readonly member?: MemberRecord | null;
  readonly drain?: DrainRecord | null;
}

export interface MembershipStore {
  /** This process's id on the store: it marks what it writes and publishes. */
  readonly instanceId: string;
  /** True while the store answers (connected and ready). */
  readonly connected: boolean;
  /** Wait until the store answers, at most `timeoutMs`; resolves whether it does. */
  ready(timeoutMs: number): Promise<boolean>;
  /** What is stored for `listener`. Rejects when the store cannot answer. */
  load(listener: string): Promise<MembershipSnapshot>;
  /**
   * Apply `change` atomically, tell every instance, and return what is stored after
   * it. Rejects when the store cannot answer (the change may then not be made).
   */
  write(listener: string, change: MembershipWrite): Promise<MembershipSnapshot>;
  /**
   * Put `snapshot` back when nothing is stored for `listener` (the store lost its data,
   * e.g. Redis restarted without persistence), and tell every instance. Returns whether
   * it wrote.
   */
  restore(listener: string, snapshot: MembershipSnapshot): Promise<boolean>;
  /**
   * `onChange(listener, from, version)`: an instance (maybe this one) wrote. `onReady()`:
   * the store is reachable again after being away or at start; changes may have been
   * missed meanwhile.
   */
  subscribe(handlers: MembershipHandlers): void;
}

export interface MembershipHandlers {
  onChange(listener: string, from: string, version: number): void;
  onReady(): void;
}

export const EMPTY_SNAPSHOT: MembershipSnapshot = Object.freeze({
  version: 0,
  members: new Map<string, MemberRecord>(),
  drains: new Map<string, DrainRecord>(),
});
