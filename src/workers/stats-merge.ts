/**
 * The stats page (GET /, /stats.json) of an instance with workers: the control
 * plane's snapshot (membership, health, key shares, changes) with every worker's
 * counts added: connections, outcomes, decisions, bytes, per listener and upstream.
 */
import type { ListenerStats, StatsSnapshot, UpstreamStats } from '../admin/page/stats.js';
import { OUTCOMES, VIAS } from '../admin/types.js';

/**
 * What workers that died had counted, as of the last time the page asked them: their
 * counts stay in the totals (as Departed keeps their counters in /metrics), their
 * open connections do not. Folded into one snapshot, so it stays one however many die.
 */
export function addDeparted(departed: StatsSnapshot | null, last: StatsSnapshot): StatsSnapshot {
  const closed = withoutActive(last);
  if (departed === null) return closed;
  const merged = mergeStats(departed, [closed]);
  // A listener the earlier dead did not have (added by a reload since) is kept too.
  const added = closed.listeners.filter((l) => !departed.listeners.some((d) => d.name === l.name));
  return added.length === 0 ? merged : { ...merged, listeners: [...merged.listeners, ...added] };
}

function withoutActive(snapshot: StatsSnapshot): StatsSnapshot {
  return {
    ...snapshot,
    listeners: snapshot.listeners.map((l) => ({ ...l, active: 0, upstreams: l.upstreams.map((u) => ({ ...u, active: 0 })) })),
  };
}

export function mergeStats(own: StatsSnapshot, workers: readonly StatsSnapshot[]): StatsSnapshot {
  return { ...own, listeners: own.listeners.map((listener) => mergeListener(listener, workers.flatMap((w) => w.listeners.filter((l) => l.name === listener.name)))) };
}

function mergeListener(own: ListenerStats, theirs: readonly ListenerStats[]): ListenerStats {
  const outcomes = { ...own.outcomes };
  const decisions = { ...own.decisions };
  let { active, fromClient, toClient } = own;
  const upstreams: UpstreamStats[] = own.upstreams.map((u) => ({ ...u }));
  // Where each upstream's row is (the first of its name and removed-ness): a lookup, not
  // a scan per row, which made merging 5,000 upstreams quadratic.
  const rowOf = new Map<string, number>();
  const index = (u: UpstreamStats, i: number): void => {
    const key = rowKey(u);
    if (!rowOf.has(key)) rowOf.set(key, i);
  };
  upstreams.forEach(index);
  for (const listener of theirs) {
    active += listener.active;
    fromClient += listener.fromClient;
    toClient += listener.toClient;
    for (const o of OUTCOMES) outcomes[o] += listener.outcomes[o];
    for (const v of VIAS) decisions[v] += listener.decisions[v];
    for (const u of listener.upstreams) {
      const i = rowOf.get(rowKey(u));
      if (i === undefined) {
        index(u, upstreams.push(u) - 1);
        continue;
      }
      const mine = upstreams[i]!;
      upstreams[i] = {
        ...mine,
        active: mine.active + u.active,
        total: mine.total + u.total,
        fromClient: mine.fromClient === null || u.fromClient === null ? mine.fromClient : mine.fromClient + u.fromClient,
        toClient: mine.toClient === null || u.toClient === null ? mine.toClient : mine.toClient + u.toClient,
      };
    }
  }
  // The control plane binds nothing: where the workers accept.
  const address = theirs[0]?.address ?? own.address;
  return { ...own, address, active, outcomes, decisions, fromClient, toClient, upstreams };
}

/** An upstream's row: by name, removed ones apart from the one of that name now. */
function rowKey(u: UpstreamStats): string {
  return u.state === 'removed' ? `removed:${u.name}` : `live:${u.name}`;
}
