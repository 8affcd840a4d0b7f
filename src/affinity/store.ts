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

export interface Store {
  readonly kind: 'memory' | 'redis';
  /**
   * True when every call settles within the current turn of the event loop (no
   * network), so callers need no timer to bound it.
   */
  readonly local: boolean;
  /** The pins of one listener: listeners never see each other's pins. */
  pins(listener: string): PinStore;
  close(): Promise<void>;
}
