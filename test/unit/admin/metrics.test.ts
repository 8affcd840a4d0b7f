import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/admin/metrics.js';
import { OUTCOMES, type MeteredListener } from '../../../src/admin/types.js';
import type { RoutedRecord } from '../../../src/proxy/context.js';
import type { Outcome } from '../../../src/proxy/types.js';
import { UpstreamPool } from '../../../src/routing/pool.js';
import type { Upstream } from '../../../src/routing/upstream.js';
import { seededRandom } from '../../helpers/random.js';

/**
 * A listener as Metrics sees it, over a real pool: the pool's upstreams plus removed
 * ones that still hold connections (what ListenerRuntime.upstreams() yields).
 */
class PoolListener implements MeteredListener {
  readonly name: string;
  readonly pool: UpstreamPool;
  /** Open units with their bytes so far (a listener's sessions). */
  readonly open = new Set<RoutedRecord>();
  readonly #known: Set<Upstream>;

  constructor(name: string, upstreams: readonly string[]) {
    this.name = name;
    this.pool = new UpstreamPool(
      { algorithm: 'rendezvous', vnodes: 1, balanceFactor: 0 },
      upstreams.map((n) => ({ name: n, host: '127.0.0.1', port: 9, weight: 1 })),
    );
    this.#known = new Set(this.pool.list());
    this.pool.onChange((event) => {
      if (event.change === 'added') this.#known.add(this.pool.get(event.upstream)!);
    });
  }

  *upstreams(): IterableIterator<Upstream> {
    for (const u of this.#known) {
      if (u.removed && u.active === 0) {
        this.#known.delete(u);
        continue;
      }
      yield u;
    }
  }

  openUnits(): Iterable<RoutedRecord> {
    return this.open;
  }
}

/** The per-upstream families as prom-client rendered them before tether wrote them itself. */
const OWN_FAMILIES = ['tether_connections_active', 'tether_connections_total', 'tether_bytes_total', 'tether_upstream_up'];

/**
 * What prom-client renders for the four per-upstream families from the same records:
 * the collect functions tether used until it wrote these families itself, unchanged.
 * `listeners`: every listener name in the order Metrics first saw it (hooks()).
 */
async function reference(metrics: Metrics, listeners: readonly string[], live: readonly MeteredListener[], retired: readonly MeteredListener[]): Promise<Map<string, string>> {
  const registry = new Registry();
  const registers = [registry];
  const active = new Gauge({
    name: 'tether_connections_active',
    help: 'Open client connections by upstream (removed upstreams included while their connections last).',
    labelNames: ['listener', 'upstream'],
    registers,
  });
  const connections = new Counter({
    name: 'tether_connections_total',
    help: 'Closed client connections by outcome; upstream="" when none was reached.',
    labelNames: ['listener', 'upstream', 'outcome'],
    registers,
  });
  const bytes = new Counter({
    name: 'tether_bytes_total',
    help: 'Bytes relayed for clients, counted as they pass: from_client = sent by clients, to_client = received by clients.',
    labelNames: ['listener', 'upstream', 'direction'],
    registers,
  });
  const up = new Gauge({
    name: 'tether_upstream_up',
    help: '1 when the upstream is up (draining counts as up), 0 when down.',
    labelNames: ['listener', 'upstream'],
    registers,
  });

  const sum = (listener: MeteredListener, includeIdle: boolean): void => {
    const byName = new Map<string, number>();
    for (const u of listener.upstreams()) {
      if (includeIdle || u.active > 0) byName.set(u.name, (byName.get(u.name) ?? 0) + u.active);
    }
    for (const [upstream, n] of byName) active.set({ listener: listener.name, upstream }, n);
  };
  for (const listener of retired) {
    let open = 0;
    for (const u of listener.upstreams()) open += u.active;
    if (open > 0) sum(listener, false);
  }
  for (const listener of live) sum(listener, true);
  for (const listener of live) {
    for (const u of listener.pool.list()) up.set({ listener: listener.name, upstream: u.name }, u.healthy ? 1 : 0);
  }
  for (const name of listeners) {
    const byUpstream = new Map<string, [number, number]>();
    for (const totals of metrics.totals(name).upstreams.values()) {
      for (const outcome of OUTCOMES) {
        const value = totals.outcomes[outcome];
        if (value > 0) connections.inc({ listener: name, upstream: totals.upstream, outcome }, value);
      }
      byUpstream.set(totals.upstream, [totals.fromClient, totals.toClient]);
    }
    // Open units add what they have relayed so far, on live and retired listeners alike.
    for (const l of [...live, ...retired]) {
      if (l.name !== name) continue;
      for (const unit of l.openUnits()) {
        if (unit.fromClient === 0 && unit.toClient === 0) continue; // nothing yet: no series
        const upstream = unit.upstream?.name ?? '';
        const [from, to] = byUpstream.get(upstream) ?? [0, 0];
        byUpstream.set(upstream, [from + unit.fromClient, to + unit.toClient]);
      }
    }
    for (const [upstream, [from, to]] of byUpstream) {
      if (upstream === '' && from === 0 && to === 0) continue;
      bytes.inc({ listener: name, upstream, direction: 'from_client' }, from);
      bytes.inc({ listener: name, upstream, direction: 'to_client' }, to);
    }
  }
  const out = new Map<string, string>();
  for (const name of OWN_FAMILIES) out.set(name, `${await registry.getSingleMetricAsString(name)}\n`);
  return out;
}

/** A closed connection as a listener reports it to its hooks. */
function close(metrics: Metrics, listener: string, upstream: Upstream | null, outcome: Outcome, fromClient: number, toClient: number): void {
  metrics.hooks(listener).onSessionEnd({ via: 'hash', upstream, outcome, fromClient, toClient });
}

const pools: UpstreamPool[] = [];
const made: Metrics[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
  for (const m of made.splice(0)) m.close();
});

function listener(name: string, upstreams: readonly string[]): PoolListener {
  const l = new PoolListener(name, upstreams);
  pools.push(l.pool);
  return l;
}

function metricsWith(options?: ConstructorParameters<typeof Metrics>[0]): Metrics {
  const m = new Metrics(options);
  made.push(m);
  return m;
}

/** Problems of an exposition: lines neither HELP, TYPE nor a sample; a series seen twice. */
function problems(text: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  if (!text.endsWith('\n')) found.push('no newline at the end');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ./.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})?) (-?[0-9.]+(?:e[+-]?[0-9]+)?|[+-]Inf|Nan)$/.exec(line);
    if (m === null) found.push(`not a sample: ${JSON.stringify(line)}`);
    else if (seen.has(m[1]!)) found.push(`twice: ${m[1]!}`);
    else seen.add(m[1]!);
  }
  return found;
}

describe('Metrics: the per-upstream families', () => {
  it('read as prom-client rendered them: awkward names, removed upstreams, retired listeners, outcomes and bytes', async () => {
    const metrics = metricsWith({ sliceLines: 3 });
    // Config validation keeps names plain; the text must not depend on it.
    const awkward = ['a"b', 'c\\d', 'e\nf', 'ü-名', 'plain'];
    const main = listener('main "one"\\\n', [...awkward, 'pod-1', 'pod-2', 'pod-3']);
    const other = listener('other', ['x', 'y']);
    const old = listener('other', ['x', 'gone', 'idle']); // reloaded away, same name as a live one
    const oldIdle = listener('retired-idle', ['z']);
    // Records in the order their listeners start (a ListenerRuntime asks for its hooks at once).
    const seen = [main.name, other.name, oldIdle.name];
    for (const name of seen) metrics.hooks(name);
    for (const l of [old, oldIdle]) metrics.track(l);
    metrics.track(main);
    metrics.track(other);
    metrics.retire(old);
    metrics.retire(oldIdle);

    const u = (l: PoolListener, name: string): Upstream => l.pool.get(name)!;
    u(main, 'a"b').active = 2;
    u(main, 'pod-2').active = 1;
    u(other, 'x').active = 4;
    u(old, 'x').active = 7; // the live listener's x wins
    u(old, 'gone').active = 1;
    // Removed with a connection open, then added again: two objects, one series.
    u(main, 'pod-3').active = 3;
    main.pool.remove('pod-3');
    main.pool.put('pod-3', '127.0.0.1', 10);
    u(main, 'pod-3').active = 2;
    main.pool.setHealth('c\\d', false, 'test');
    main.pool.drain('pod-1');

    const random = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const l = random() < 0.8 ? main : other;
      const ups = l.pool.list();
      const target = random() < 0.1 ? null : ups[Math.floor(random() * ups.length)]!;
      const outcome = target === null ? (random() < 0.5 ? 'refused' : 'no_upstream') : OUTCOMES[Math.floor(random() * OUTCOMES.length)]!;
      close(metrics, l.name, target, outcome, Math.floor(random() * 1e6), Math.floor(random() * 1e9));
    }
    close(metrics, oldIdle.name, null, 'refused', 0, 0); // "" with no bytes: no bytes series
    // Units still open: their bytes so far count too, a retired listener's included.
    const unit = (l: PoolListener, name: string | null, fromClient: number, toClient: number): void => {
      l.open.add({ via: 'hash', upstream: name === null ? null : u(l, name), outcome: 'ok', fromClient, toClient });
    };
    unit(main, 'plain', 5, 7);
    unit(main, 'plain', 1_000, 0);
    unit(other, 'y', 3, 4);
    unit(old, 'gone', 11, 13); // only open units there: a series of its own
    unit(old, 'idle', 0, 0); // nothing relayed yet: no series

    const expected = await reference(metrics, seen, [main, other], [old, oldIdle]);
    const whole = await metrics.scrape();
    for (const family of OWN_FAMILIES) {
      const mine = await metrics.scrape([family]);
      expect(mine, family).toBe(expected.get(family));
      expect(whole, family).toContain(mine.slice(0, -1));
    }
    // Spot checks that the case is what it claims to be.
    const active = expected.get('tether_connections_active')!;
    expect(active).toContain('listener="other",upstream="x"} 4');
    expect(active).toContain('listener="other",upstream="gone"} 1');
    expect(active).toContain('upstream="pod-3"} 5');
    expect(active).toContain('upstream="a\\"b"} 2');
    expect(active).not.toContain('retired-idle');
    expect(expected.get('tether_upstream_up')).toContain('upstream="c\\\\d"} 0');
    expect(expected.get('tether_connections_total')).toContain('upstream="e\\nf"');
    expect(expected.get('tether_bytes_total')).toContain('listener="other",upstream="gone",direction="from_client"} 11');
    expect(expected.get('tether_bytes_total')).not.toContain('upstream="idle"');
    expect(problems(whole)).toEqual([]);
  });

  it('keep the families and their order: Node\'s default metrics, then tether\'s as before', async () => {
    const metrics = metricsWith();
    const defaults = new Registry();
    collectDefaultMetrics({ register: defaults });
    const types = [...(await metrics.scrape()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(types).toEqual([
      ...defaults.getMetricsAsArray().map((m) => `${m.name} ${(m as unknown as { type: string }).type}`),
      'tether_connections_active gauge',
      'tether_connections_total counter',
      'tether_bytes_total counter',
      'tether_upstream_up gauge',
      'tether_route_decisions_total counter',
      'tether_ring_build_seconds histogram',
      'tether_ring_builds_total counter',
      'tether_store_errors_total counter',
      'tether_pins_evicted_total counter',
      'tether_event_loop_delay_seconds gauge',
    ]);
    // Node's families read as prom-client's own (nodejs_eventloop_lag_* are tether's, from its sampler).
    const helps = new Map([...(await metrics.scrape()).matchAll(/^# HELP (\S+) (.*)$/gm)].map((m) => [m[1], m[2]]));
    for (const m of defaults.getMetricsAsArray()) expect(helps.get(m.name), m.name).toBe(m.help);
    for (const name of OWN_FAMILIES) expect(metrics.has(name)).toBe(true);
    expect(metrics.has('process_cpu_user_seconds_total')).toBe(true);
    expect(metrics.has('no_such_metric')).toBe(false);
    // Unknown names are skipped, a name given twice is written once.
    expect(await metrics.scrape(['tether_upstream_up', 'no_such_metric', 'tether_upstream_up'])).toBe(await metrics.scrape(['tether_upstream_up']));
    expect(await metrics.scrape([])).toBe('');
  });

  it('stay well-formed while upstreams come and go and listeners reload between every two lines', async () => {
    // A slice of one line: the changes below land between any two lines of the scrape.
    const metrics = metricsWith({ sliceLines: 1, sliceMs: 0 });
    const names = Array.from({ length: 300 }, (_, i) => `pod-${i}`);
    let current = listener('main', names);
    metrics.track(current);
    const records = ['main'];
    const retired: PoolListener[] = [];
    const random = seededRandom(11);
    for (const u of current.pool.list()) {
      u.active = Math.floor(random() * 3);
      close(metrics, 'main', u, 'ok', 10, 20);
    }
    let added = 0;
    let reloads = 0;
    let changes = 0;
    const change = (): void => {
      changes++;
      const pool = current.pool;
      const ups = pool.list();
      const pick = ups[Math.floor(random() * ups.length)];
      const r = random();
      if (r < 0.3 && pick) {
        pick.active = Math.max(pick.active, 1);
        pool.remove(pick.name); // lives on while its connection does
      } else if (r < 0.6) {
        pool.put(random() < 0.5 && pick ? pick.name : `new-${added++}`, '127.0.0.1', 11);
      } else if (r < 0.7 && pick) {
        pool.setHealth(pick.name, !pick.healthy, 'test');
      } else if (r < 0.8 && pick) {
        close(metrics, 'main', pick, 'timeout', 1, 1);
        records.push(`listener-${changes}`);
        close(metrics, `listener-${changes}`, null, 'refused', 0, 0); // a record appears mid-scrape
      } else if (r < 0.9) {
        // A reload: the listener is replaced by one of the same name.
        const next = listener('main', current.pool.list().map((u) => u.name));
        metrics.retire(current);
        retired.push(current);
        metrics.track(next);
        current = next;
        reloads++;
      } else {
        for (const u of ups) if (u.active > 0 && random() < 0.5) u.active--;
      }
    };
    for (let round = 0; round < 5; round++) {
      const pieces: string[] = [];
      await metrics.write((text) => {
        pieces.push(text);
        change();
      });
      const text = pieces.join('');
      expect(pieces.length, 'pieces').toBeGreaterThan(1_000);
      expect(problems(text), `round ${round}`).toEqual([]);
      for (const family of OWN_FAMILIES) expect(text).toContain(`# TYPE ${family} `);
    }
    expect(reloads).toBeGreaterThan(10);
    // Once changes stop, a scrape agrees with prom-client again.
    const expected = await reference(metrics, records, [current], retired);
    for (const family of OWN_FAMILIES) expect(await metrics.scrape([family]), family).toBe(expected.get(family));
    expect(expected.get('tether_connections_active')!.split('\n').length).toBeGreaterThan(300);
  });
});
