/**
 * Bytes as they pass (tether_bytes_total, the stats page): the totals of ended units
 * plus what the units still open have relayed so far, read when asked (a scrape, a
 * stats page). A relay path takes part by keeping its open units in a set whose
 * members' `fromClient` and `toClient` grow as bytes pass (a Session adds every read
 * it relays), and by counting a unit in the ended totals in the same synchronous step
 * that takes it out of that set. Then each unit is counted once, open or ended, and
 * every sum only grows. No timer, and no work per chunk beyond those two counters.
 */
import type { RoutedRecord } from '../proxy/context.js';
import type { ListenerTotals } from './types.js';

export interface ByteCount {
  fromClient: number;
  toClient: number;
}

/**
 * Bytes by upstream name ("" for units that reached none) of one listener: `ended`'s
 * totals plus the units open now in `open` (a set per listener object of that name).
 * One synchronous pass, so no unit ends between the two reads.
 */
export function bytesByUpstream(ended: ListenerTotals, open: Iterable<Iterable<RoutedRecord>>): Map<string, ByteCount> {
  const bytes = new Map<string, ByteCount>();
  for (const totals of ended.upstreams.values()) bytes.set(totals.upstream, { fromClient: totals.fromClient, toClient: totals.toClient });
  for (const units of open) {
    for (const unit of units) {
      if (unit.fromClient === 0 && unit.toClient === 0) continue;
      const name = unit.upstream?.name ?? '';
      const count = bytes.get(name);
      if (count === undefined) {
        bytes.set(name, { fromClient: unit.fromClient, toClient: unit.toClient });
      } else {
        count.fromClient += unit.fromClient;
        count.toClient += unit.toClient;
      }
    }
  }
  return bytes;
}
