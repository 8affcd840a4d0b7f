import { keyHashForLog } from '../log.js';
import { formatAddress } from '../routing/upstream.js';
import type { RoutedRecord } from './context.js';
import type { KeySourceName } from '../routing/types.js';

/** A routed unit that has ended, as the access log describes it. */
export interface EndedRecord extends RoutedRecord {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly key: string | null;
  readonly keySource: KeySourceName;
  readonly startedAt: number;
  readonly reason: string;
}

/** Count an ended unit's bytes against its upstream. */
export function settle(record: RoutedRecord): void {
  const upstream = record.upstream;
  if (upstream !== null) {
    upstream.bytesFromClient += record.fromClient;
    upstream.bytesToClient += record.toClient;
  }
}

/**
 * An ended unit's access-log fields (built only when the access log is on). The key
 * appears only as a short hash: keys are secrets.
 */
export function accessFields(listener: string, record: EndedRecord): Record<string, unknown> {
  const upstream = record.upstream;
  return {
    listener,
    client: formatAddress(record.clientAddress, record.clientPort),
    upstream: upstream?.name ?? null,
    via: record.via,
    keySource: record.keySource,
    keyHash: record.key === null ? null : keyHashForLog(record.key),
    fromClient: record.fromClient,
    toClient: record.toClient,
    durationMs: Math.round(performance.now() - record.startedAt),
    outcome: record.outcome,
    reason: record.reason,
  };
}
