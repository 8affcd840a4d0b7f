/**
 * What the control plane and its workers say to each other over the cluster IPC
 * channel (JSON, in order, one channel per worker). docs/architecture.md, "Workers",
 * tells the story; here are the shapes.
 */

import type { StatsSnapshot } from '../admin/page/stats.js';

/** One upstream as the control plane holds it: all a worker needs to route alike. */
export interface UpstreamSnapshot {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly healthy: boolean;
  readonly draining: boolean;
  /** When the drain's deadline closes what is left (epoch ms), or null. */
  readonly drainDeadlineAt: number | null;
}

/** A listener's whole membership, version `version` (counted per listener by the control plane). */
export interface MembershipMessage {
  readonly type: 'membership';
  readonly listener: string;
  readonly version: number;
  readonly upstreams: readonly UpstreamSnapshot[];
}

/** Questions the control plane asks a worker, and what each is answered with. */
export interface Questions {
  /** The worker's own exposition (every family, or those named). */
  readonly metrics: { readonly names: readonly string[] | null };
  readonly status: Record<string, never>;
  /** Its stats page data (workers/stats-merge.ts). */
  readonly stats: Record<string, never>;
  /** POST /rebalance, this worker's share of the rate. */
  readonly rebalance: { readonly listener: string; readonly perSecond: number };
  /**
   * The control plane's read every COUNTS_READ_MS (last-counts.ts): the families named
   * and the stats page data, or nothing when nothing was counted since `since`.
   */
  readonly counts: { readonly names: readonly string[] | null; readonly since: string | null };
}

export interface Answers {
  readonly metrics: { readonly text: string };
  readonly status: { readonly active: number; readonly total: number };
  readonly stats: { readonly snapshot: StatsSnapshot };
  /** Connections it will close (0 when it has no such listener). */
  readonly rebalance: { readonly moving: number };
  /** `mark` names what was counted so far; text and snapshot are null when it is `since`. */
  readonly counts: { readonly mark: string; readonly text: string | null; readonly snapshot: StatsSnapshot | null };
}

export type Topic = keyof Questions;

/**
 * Learned pins with TETHER_STORE=memory: the control plane holds them; a worker asks
 * for what its cache lacks (pin-get), writes through (pin-set, answered once stored),
 * sends touches in batches (pin-touch) and deletes (pin-delete).
 */
export type PinRequest =
  | { readonly type: 'pin-get'; readonly id: number; readonly listener: string; readonly key: string }
  | { readonly type: 'pin-set'; readonly id: number; readonly listener: string; readonly key: string; readonly upstream: string; readonly ttlS: number }
  | { readonly type: 'pin-touch'; readonly listener: string; readonly keys: readonly string[]; readonly ttlS: number }
  | { readonly type: 'pin-delete'; readonly listener: string; readonly key: string };

/** What the control plane answers a pin-get or pin-set with: the upstream pinned now (null: none). */
export interface PinAnswers {
  readonly 'pin-get': { readonly upstream: string | null };
  readonly 'pin-set': { readonly upstream: string | null };
}

/** The control plane's pin traffic to one worker. */
export type PinNews =
  | { readonly type: 'pin-answer'; readonly id: number; readonly answer: PinAnswers[keyof PinAnswers] }
  /** A pin set (upstream) or deleted (null) through another worker: keeps each worker's cache true. */
  | { readonly type: 'pin'; readonly listener: string; readonly key: string; readonly upstream: string | null; readonly ttlS: number };

/** Open connections by listener, then upstream (those with none left out). */
export type Loads = Readonly<Record<string, Readonly<Record<string, number>>>>;

export type ToWorker =
  | MembershipMessage
  /** What the other workers hold (loads.ts): bounded loads weigh the instance's connections. */
  | { readonly type: 'elsewhere'; readonly loads: Loads }
  /** Queued by WorkerSet.send, sent in a `pins` message. */
  | PinNews
  /** One event-loop turn's pin traffic (turn-batch.ts), in order. */
  | { readonly type: 'pins'; readonly items: readonly PinNews[] }
  /**
   * `grant` more of the listener's TETHER_MAX_CONNECTIONS (lease-ledger.ts): a share
   * unasked, or the answer to a `lease-ask` (`answer`; 0: the instance is full).
   * `books` numbers the ledger's books of that listener: a listener removed and made
   * again by reloads starts new ones, and leases of the old are void.
   */
  | { readonly type: 'lease'; readonly listener: string; readonly books: number; readonly grant: number; readonly answer: boolean }
  /** Another worker needs room: give back the lease not in use (`lease-return`). */
  | { readonly type: 'lease-reclaim'; readonly listener: string; readonly books: number }
  /** Every membership was sent: listen once they are applied. */
  | { readonly type: 'start' }
  /** SIGHUP: the control plane took a new configuration; read it again. */
  | { readonly type: 'reload' }
  /** Drain for up to drainTimeoutMs (null: close what is open now), then exit 0. */
  | { readonly type: 'stop'; readonly drainTimeoutMs: number | null }
  | { readonly [T in Topic]: { readonly type: 'ask'; readonly id: number; readonly topic: T; readonly question: Questions[T] } }[Topic];

export type ToControlPlane =
  /** The worker's handlers are in place: send it every membership, then start. */
  | { readonly type: 'hello' }
  /** Queued by the worker's send, sent in a `pins` message. */
  | PinRequest
  /** One event-loop turn's pin requests (turn-batch.ts), in order. */
  | { readonly type: 'pins'; readonly items: readonly PinRequest[] }
  /** Its lease on the listener is full and `wanted` connections wait: room, please. */
  | { readonly type: 'lease-ask'; readonly listener: string; readonly books: number; readonly wanted: number }
  /** Answering `lease-reclaim`: `count` of its lease given back. */
  | { readonly type: 'lease-return'; readonly listener: string; readonly books: number; readonly count: number }
  /** This worker's open connections, sent when they changed (at most every LOAD_REPORT_MS). */
  | { readonly type: 'loads'; readonly loads: Loads }
  /** The worker routes by this version of the listener's membership (its table is built). */
  | { readonly type: 'applied'; readonly listener: string; readonly version: number }
  /** It could not start (then exits 1): why, for the control plane's own error. */
  | { readonly type: 'failed'; readonly error: string }
  /** Every listener accepts. */
  | { readonly type: 'ready'; readonly listeners: readonly { readonly name: string; readonly address: string }[] }
  /** Passive health evidence: a connect failed, or (after a failure) succeeded. */
  | { readonly type: 'evidence'; readonly listener: string; readonly upstream: string; readonly ok: boolean; readonly reason: string }
  | { readonly [T in Topic]: { readonly type: 'answer'; readonly id: number; readonly topic: T; readonly answer: Answers[T] } }[Topic];

/** Pin traffic: sent in a turn's `pins` message, never alone (turn-batch.ts). */
export function isPinRequest(message: ToControlPlane): message is PinRequest {
  return message.type === 'pin-get' || message.type === 'pin-set' || message.type === 'pin-touch' || message.type === 'pin-delete';
}

export function isPinNews(message: ToWorker): message is PinNews {
  return message.type === 'pin' || message.type === 'pin-answer';
}

/** A message from the IPC channel: an object with a string `type` (they come from our own processes). */
export function isMessage<M extends { readonly type: string }>(value: unknown): value is M {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}
