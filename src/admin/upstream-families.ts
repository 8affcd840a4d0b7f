/**
 * The four per-upstream families (one series per upstream, or per upstream and
 * outcome or direction), written straight from the records the listener hooks bump
 * and from the pools' Upstream objects, a slice of the event loop at a time (see
 * metrics.ts for why not through prom-client).
 */
import type { ByteCount } from './live-bytes.js';
import { escapeText, label, type ExpositionWriter, type FamilyType } from './prom-text.js';
import { OUTCOMES, type ListenerTotals, type MeteredListener, type UpstreamTotals } from './types.js';
import type { Outcome } from '../proxy/types.js';
import type { RouteVia } from '../routing/types.js';

/** A family written here rather than by prom-client (see the file's comment). */
interface OwnFamily {
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
}

export const ACTIVE: OwnFamily = {
  name: 'tether_connections_active',
  help: 'Open client connections by upstream (removed upstreams included while their connections last).',
  type: 'gauge',
};
export const CONNECTIONS: OwnFamily = {
  name: 'tether_connections_total',
  help: 'Closed client connections by outcome; upstream="" when none was reached.',
  type: 'counter',
};
export const BYTES: OwnFamily = {
  name: 'tether_bytes_total',
  help: 'Bytes relayed for clients, counted as they pass: from_client = sent by clients, to_client = received by clients.',
  type: 'counter',
};
export const UP: OwnFamily = {
  name: 'tether_upstream_up',
  help: '1 when the upstream is up (draining counts as up), 0 when down.',
  type: 'gauge',
};

const OUTCOME_LABELS = OUTCOMES.map((outcome) => label('outcome', outcome));
const FROM_CLIENT_LABEL = label('direction', 'from_client');
const TO_CLIENT_LABEL = label('direction', 'to_client');

export class ListenerRecord implements ListenerTotals {
  readonly listener: string;
  readonly decisions: Record<RouteVia, number> = { learned: 0, hash: 0, p2c: 0 };
  /** Whether the listener routes by learned pins at all (metrics.ts setLearns). */
  learns = true;
  readonly upstreams = new Map<string, UpstreamRecord>();
  readonly none: UpstreamRecord;

  constructor(listener: string) {
    this.listener = listener;
    this.none = this.upstream('');
  }

  upstream(name: string): UpstreamRecord {
    let record = this.upstreams.get(name);
    if (record === undefined) {
      record = new UpstreamRecord(name);
      this.upstreams.set(name, record);
    }
    return record;
  }
}

class UpstreamRecord implements UpstreamTotals {
  readonly upstream: string;
  readonly outcomes: Record<Outcome, number> = { ok: 0, refused: 0, no_upstream: 0, connect_failed: 0, bad_request: 0, timeout: 0 };
  fromClient = 0;
  toClient = 0;

  constructor(upstream: string) {
    this.upstream = upstream;
  }
}

interface UpstreamSample {
  readonly listener: string;
  readonly upstream: string;
  value: number;
  /** The listener pass that last wrote the value. */
  pass: number;
}

/**
 * The samples of a {listener, upstream} gauge, gathered one listener (a "pass") at a
 * time. Kept in the order each pair was first written, a later pass replacing the
 * value in place: prom-client's label map did the same (gauge.set on a label set
 * already there), so the text is unchanged.
 */
class UpstreamSeries {
  readonly samples: UpstreamSample[] = [];
  readonly #index = new Map<string, Map<string, UpstreamSample>>();
  #pass = 0;

  /** The next listener: what it writes replaces what earlier ones of the same name wrote. */
  nextPass(): void {
    this.#pass++;
  }

  /** Adds `value` to what this pass wrote for the pair, or replaces an earlier pass's value. */
  sum(listener: string, upstream: string, value: number): void {
    const sample = this.#sample(listener, upstream);
    if (sample.pass === this.#pass) {
      sample.value += value;
    } else {
      sample.value = value;
      sample.pass = this.#pass;
    }
  }

  /** Sets the pair's value. */
  set(listener: string, upstream: string, value: number): void {
    const sample = this.#sample(listener, upstream);
    sample.value = value;
    sample.pass = this.#pass;
  }

  /** The pair's sample; a new one starts at 0 in no pass. */
  #sample(listener: string, upstream: string): UpstreamSample {
    let byUpstream = this.#index.get(listener);
    if (byUpstream === undefined) {
      byUpstream = new Map();
      this.#index.set(listener, byUpstream);
    }
    let sample = byUpstream.get(upstream);
    if (sample === undefined) {
      sample = { listener, upstream, value: 0, pass: -1 };
      byUpstream.set(upstream, sample);
      this.samples.push(sample);
    }
    return sample;
  }
}

/*
 * The writers below may pause after any sample, and membership may change while
 * they wait (upstreams added or removed, a listener reloaded). Each works on arrays
 * taken before it reads them (the listeners when the family starts, a listener's
 * upstreams when its turn comes), so nothing is visited twice and every line is
 * whole; values are read when their line is written, as a Prometheus scrape allows.
 */

export async function writeActive(out: ExpositionWriter, live: ReadonlySet<MeteredListener>, retiredSet: Set<MeteredListener>): Promise<void> {
  const series = new UpstreamSeries();
  for (const listener of [...retiredSet]) {
    const upstreams = [...listener.upstreams()];
    let open = 0;
    for (const u of upstreams) open += u.active;
    if (open === 0) {
      retiredSet.delete(listener);
      continue;
    }
    // Summed by name: an upstream removed and added again is two objects, one series.
    series.nextPass();
    for (const u of upstreams) {
      if (u.active > 0) series.sum(listener.name, u.name, u.active);
      if (out.due()) await out.pause();
    }
  }
  // Live listeners last: their values win over a retired one of the same name.
  for (const listener of [...live]) {
    series.nextPass();
    for (const u of [...listener.upstreams()]) {
      series.sum(listener.name, u.name, u.active);
      if (out.due()) await out.pause();
    }
  }
  await writeUpstreamSeries(out, ACTIVE, series);
}

export async function writeUp(out: ExpositionWriter, live: ReadonlySet<MeteredListener>): Promise<void> {
  const series = new UpstreamSeries();
  for (const listener of [...live]) {
    series.nextPass();
    for (const u of listener.pool.list()) {
      series.set(listener.name, u.name, u.healthy ? 1 : 0);
      if (out.due()) await out.pause();
    }
  }
  await writeUpstreamSeries(out, UP, series);
}

export async function writeConnections(out: ExpositionWriter, records: ReadonlyMap<string, ListenerRecord>): Promise<void> {
  out.family(CONNECTIONS.name, CONNECTIONS.help, CONNECTIONS.type);
  const name = escapeText(CONNECTIONS.name);
  for (const record of [...records.values()]) {
    const head = `${name}{${label('listener', record.listener)},`;
    for (const totals of [...record.upstreams.values()]) {
      const upstream = label('upstream', totals.upstream);
      for (let i = 0; i < OUTCOMES.length; i++) {
        const value = totals.outcomes[OUTCOMES[i]!];
        if (value > 0) out.sample(`${head}${upstream},${OUTCOME_LABELS[i]!}}`, value);
      }
      if (out.due()) await out.pause();
    }
  }
}

/** `bytes(listener)`: ended and open units' bytes by upstream (live-bytes.ts), read at once. */
export async function writeBytes(out: ExpositionWriter, records: ReadonlyMap<string, ListenerRecord>, bytes: (listener: string) => ReadonlyMap<string, ByteCount>): Promise<void> {
  out.family(BYTES.name, BYTES.help, BYTES.type);
  const name = escapeText(BYTES.name);
  for (const record of [...records.values()]) {
    const head = `${name}{${label('listener', record.listener)},`;
    for (const [upstreamName, count] of bytes(record.listener)) {
      // The "" series only when something was counted there (bytes before a failed connect).
      if (upstreamName === '' && count.fromClient === 0 && count.toClient === 0) continue;
      const upstream = label('upstream', upstreamName);
      out.sample(`${head}${upstream},${FROM_CLIENT_LABEL}}`, count.fromClient);
      out.sample(`${head}${upstream},${TO_CLIENT_LABEL}}`, count.toClient);
      if (out.due()) await out.pause();
    }
  }
}

/** A {listener, upstream} gauge's lines, in the series' order. */
async function writeUpstreamSeries(out: ExpositionWriter, family: OwnFamily, series: UpstreamSeries): Promise<void> {
  out.family(family.name, family.help, family.type);
  const name = escapeText(family.name);
  let listener: string | null = null;
  let head = '';
  for (const sample of series.samples) {
    if (sample.listener !== listener) {
      listener = sample.listener;
      head = `${name}{${label('listener', listener)},`;
    }
    out.sample(`${head}${label('upstream', sample.upstream)}}`, sample.value);
    if (out.due()) await out.pause();
  }
}
