import type { Member } from '../hashing/types.js';

export type UpstreamState = 'up' | 'down' | 'draining';

/** Anything routed to an upstream that can be told to close (a proxied connection). */
export interface Closable {
  close(reason: string): void;
}

/**
 * One upstream of one listener: identity (name), address, weight and live counts.
 * Mutable on purpose: counters change per connection, and a removed upstream lives on
 * as long as connections routed to it are open.
 */
export class Upstream implements Member {
  readonly name: string;
  host: string;
  port: number;
  weight: number;
  /** Health as judged by active checks and failed connects. */
  healthy = true;
  /** Admin drain: no new keys, pins still reach it. */
  draining = false;
  /** Deleted from the pool; open connections go on. */
  removed = false;
  active = 0;
  /** Open connections to it through the other workers of TETHER_WORKERS, as last reported (bounded loads see both). */
  elsewhere = 0;
  total = 0;
  bytesFromClient = 0;
  bytesToClient = 0;
  /** Index in the pool's routable view, -1 when not routable (down, draining, removed). */
  slot = -1;
  /**
   * Index in the member list of the pool's table in use, when last installed there;
   * valid only while that list holds this object at this index.
   */
  tableIndex = -1;
  /** Open connections, for drain deadlines, rebalancing and tests of who was closed. */
  readonly sessions = new Set<Closable>();
  drainTimer: NodeJS.Timeout | null = null;
  /** When a drain's deadline closes what is left (epoch ms); null without one. */
  drainDeadlineAt: number | null = null;

  constructor(name: string, host: string, port: number, weight: number) {
    this.name = name;
    this.host = host;
    this.port = port;
    this.weight = weight;
  }

  get state(): UpstreamState {
    if (!this.healthy) return 'down';
    return this.draining ? 'draining' : 'up';
  }

  /** Routable for new keys: up and not draining. */
  get routable(): boolean {
    return this.healthy && !this.draining && !this.removed;
  }

  /** Reachable through a learned pin: draining counts as up. */
  get pinnable(): boolean {
    return this.healthy && !this.removed;
  }

  get address(): string {
    return formatAddress(this.host, this.port);
  }
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
