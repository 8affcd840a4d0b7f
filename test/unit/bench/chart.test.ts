import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderChart } from '../../../native-bench/chart.mjs';
import {
  BALANCER_LABELS,
  BALANCER_ORDER,
  type BalancerId,
  type BenchResults,
  type ResultsColumn,
} from '../../../native-bench/format.mjs';
import { evaluateHttpTargets, evaluateTargets, httpTargetsMarkdown, targetsMarkdown } from '../../../native-bench/targets.mjs';

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  text: string;
  children: XmlElement[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const decode = (s: string): string => s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e] ?? '');

/**
 * A strict little XML reader, enough for the chart: an optional prolog, then one
 * root element; every tag closed in order, attributes quoted, no stray `<` and no
 * `&` that is not one of the five entities. Throws on anything else.
 */
function parseXml(doc: string): XmlElement {
  let rest = doc.replace(/^<\?xml[^?]*\?>\s*/, '');
  const root: XmlElement = { name: '#document', attrs: {}, text: '', children: [] };
  const stack: XmlElement[] = [root];
  const tag = /^<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/;
  const badAmp = /&(?!(amp|lt|gt|quot|apos);)/;
  while (rest.length > 0) {
    const lt = rest.indexOf('<');
    const content = lt === -1 ? rest : rest.slice(0, lt);
    if (badAmp.test(content)) throw new Error(`bare & in text: ${content.slice(0, 40)}`);
    stack[stack.length - 1]!.text += decode(content);
    if (lt === -1) break;
    rest = rest.slice(lt);
    const m = tag.exec(rest);
    if (!m) throw new Error(`not a tag: ${rest.slice(0, 60)}`);
    const [whole, closing, name, attrText, selfClosing] = m as unknown as [string, string, string, string, string];
    rest = rest.slice(whole.length);
    if (closing) {
      const open = stack.pop();
      if (!open || open.name !== name || stack.length === 0) throw new Error(`</${name}> closes <${open?.name}>`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([\w:-]+)="([^"]*)"/g)) {
      if (badAmp.test(a[2]!)) throw new Error(`bare & in ${name}@${a[1]}`);
      if (a[1]! in attrs) throw new Error(`${name}: attribute ${a[1]} twice`);
      attrs[a[1]!] = decode(a[2]!);
    }
    const el: XmlElement = { name, attrs, text: '', children: [] };
    stack[stack.length - 1]!.children.push(el);
    if (!selfClosing) stack.push(el);
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.text.trim() !== '') throw new Error('text outside the root element');
  if (root.children.length !== 1) throw new Error(`${root.children.length} root elements`);
  return root.children[0]!;
}

function all(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement): void => {
    if (e.name === name) out.push(e);
    e.children.forEach(walk);
  };
  walk(el);
  return out;
}

/** What each <text> and <tspan> says, trimmed. */
const texts = (svg: XmlElement): string[] => [...all(svg, 'text'), ...all(svg, 'tspan')].map((t) => t.text.trim()).filter(Boolean);

type Medians = Partial<Record<BalancerId, number | null>>;

/** A summary column as run.mjs writes it, ratios computed from the medians. */
function column(label: string, better: 'higher' | 'lower', medians: Medians): ResultsColumn {
  const byBalancer: ResultsColumn['byBalancer'] = {};
  for (const [b, median] of Object.entries(medians)) {
    const d = medians.direct;
    const h = medians.haproxy;
    byBalancer[b] = {
      median: median ?? null,
      runs: median === null || median === undefined ? [] : [median],
      vsDirect: median !== null && median !== undefined && d ? median / d : null,
      vsHaproxy: median !== null && median !== undefined && h ? median / h : null,
    };
  }
  return { label, better, byBalancer };
}

/** Every side-by-side column, tether meeting some targets and missing others. */
function fullResults(): BenchResults {
  return {
    date: '2026-11-22T12:00:00.000Z',
    machine: { cpus: 2, cpuModel: 'Test CPU', node: 'v20.20.2' },
    options: { rounds: 3, duration: 3 },
    summary: {
      'bulk.mbPerS': column('bulk MB/s', 'higher', { direct: 3000, tether: 2200, naive: 1300, haproxy: 2000, nginx: 2100 }),
      'bulk.mbPerS4': column('bulk 4× MB/s', 'higher', { direct: 2500, tether: 900, naive: 1000, haproxy: 1300, nginx: 1400 }),
      'http.rps': column('HTTP req/s', 'higher', { direct: 180000, tether: 95000, naive: 88000, haproxy: 94000, nginx: 93000 }),
      'http.p99Ms': column('HTTP p99 ms', 'lower', { direct: 0.5, tether: 2, naive: 1.8, haproxy: 1, nginx: 1 }),
      'connrate.cps': column('new conn/s', 'higher', { direct: 30000, tether: 11000, naive: 11500, haproxy: 16000, nginx: 17000 }),
      'ws.ws1P50Ms': column('WS p50 ms, 1 client', 'lower', { direct: 0.02, tether: 0.03, naive: 0.03, haproxy: 0.025, nginx: 0.024 }),
      'ws.ws1P99Ms': column('WS p99 ms, 1 client', 'lower', { direct: 0.1, tether: 0.11, naive: 0.12, haproxy: 0.1, nginx: 0.09 }),
      'ws.wsNP50Ms': column('WS p50 ms, 200 clients', 'lower', { direct: 1.5, tether: 4, naive: 3, haproxy: 3.4, nginx: 3.4 }),
      'ws.wsNP99Ms': column('WS p99 ms, 200 clients', 'lower', { direct: 4, tether: 12, naive: 5.5, haproxy: 7.6, nginx: 7.9 }),
      // direct is not measured for memory; naive far past the axis cap (4×)
      'memory.kibPerConn': column('KiB per idle conn', 'lower', { direct: null, tether: 9, naive: 14, haproxy: 3, nginx: 9.5 }),
      // a workload with rows of its own: not a column of the chart
      'http-affinity.rps': {
        label: 'session-keyed HTTP req/s',
        better: 'higher',
        byBalancer: { direct: { median: 1 }, 'tether-hash': { median: 2 } },
      },
    },
  };
}

describe('benchmark chart (native-bench/chart.mjs)', () => {
  it('draws a well-formed SVG with a panel per column and a bar per measured balancer', () => {
    const results = fullResults();
    const svg = parseXml(renderChart(results));
    expect(svg.name).toBe('svg');
    expect(svg.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    expect(Number(svg.attrs.width)).toBeGreaterThan(0);
    expect(Number(svg.attrs.height)).toBeGreaterThan(0);

    const panels = all(svg, 'g').filter((g) => g.attrs.class === 'panel');
    const sideBySide = Object.keys(results.summary).filter((id) => !id.startsWith('http-affinity'));
    expect(panels.map((g) => g.attrs['data-column'])).toEqual(sideBySide);

    for (const panel of panels) {
      const col = results.summary[panel.attrs['data-column']!]!;
      const words = texts(panel);
      expect(words).toContain(`${col.label} ${col.better === 'higher' ? '↑' : '↓'}`);
      // Every balancer of the run (tether-w2 only runs with --peer-threads=2).
      for (const b of BALANCER_ORDER.filter((name) => name in col.byBalancer)) expect(words).toContain(BALANCER_LABELS[b]);
      const measured = BALANCER_ORDER.filter((b) => typeof col.byBalancer[b]?.vsHaproxy === 'number');
      expect(all(panel, 'rect')).toHaveLength(measured.length);
      for (const b of measured) {
        const ratio = col.byBalancer[b]!.vsHaproxy!;
        expect(words.some((w) => w.startsWith(`${ratio.toFixed(2)}×`))).toBe(true);
      }
    }
    const memory = panels.find((g) => g.attrs['data-column'] === 'memory.kibPerConn')!;
    expect(texts(memory)).toContain('not measured'); // direct
    expect(texts(memory)).toContain('target ≤ 8 KiB');
    expect(texts(memory).some((w) => w.startsWith('4.67×'))).toBe(true); // naive, cut at 4× but written out
    expect(renderChart(results)).not.toContain('session-keyed');
  });

  it('marks each target: a dashed line where it is not the 1.0× line itself', () => {
    const svg = parseXml(renderChart(fullResults()));
    const panel = (id: string): XmlElement =>
      all(svg, 'g').find((g) => g.attrs['data-column'] === id)!;
    const dashed = (g: XmlElement): XmlElement[] => all(g, 'line').filter((l) => l.attrs['stroke-dasharray']);
    expect(texts(panel('connrate.cps'))).toContain('target ≥ 0.80× HAProxy');
    expect(dashed(panel('connrate.cps'))).toHaveLength(1);
    expect(all(panel('connrate.cps'), 'line')).toHaveLength(2); // 1.0× and 0.8×
    expect(texts(panel('ws.wsNP99Ms'))).toContain('target ≤ 1.20× HAProxy');
    expect(dashed(panel('bulk.mbPerS'))).toHaveLength(1); // the 1.0× line, as the target
    expect(all(panel('bulk.mbPerS'), 'line')).toHaveLength(1);
    expect(dashed(panel('http.p99Ms'))).toHaveLength(0); // no target for HTTP p99
  });

  it('escapes what XML would misread in labels', () => {
    const results = fullResults();
    results.summary['http.rps']!.label = `req/s <a & b> "q" 'x'`;
    const svg = parseXml(renderChart(results));
    expect(texts(svg)).toContain(`req/s <a & b> "q" 'x' ↑`);
  });

  it('without HAProxy draws ratios to direct and no targets', () => {
    const results = fullResults();
    for (const col of Object.values(results.summary)) delete col.byBalancer.haproxy;
    const svg = parseXml(renderChart(results));
    expect(all(svg, 'title')[0]!.text).toContain('direct');
    expect(texts(svg).some((w) => w.startsWith('target'))).toBe(false);
    expect(all(svg, 'line').filter((l) => l.attrs['stroke-dasharray'])).toHaveLength(0);
    const bulk = all(svg, 'g').find((g) => g.attrs['data-column'] === 'bulk.mbPerS')!;
    expect(texts(bulk).some((w) => w.startsWith('0.73×'))).toBe(true); // tether 2200 ÷ direct 3000
    expect(texts(bulk)).not.toContain('HAProxy');
  });

  it('renders the committed results/latest.json, every balancer and column in it', () => {
    const url = new URL('../../../native-bench/results/latest.json', import.meta.url);
    const results = JSON.parse(readFileSync(url, 'utf8')) as BenchResults & { options: { balancers: BalancerId[] } };
    const svg = parseXml(renderChart(results));
    const words = texts(svg);
    for (const b of results.options.balancers) expect(words).toContain(BALANCER_LABELS[b]);
    const ids = all(svg, 'g').map((g) => g.attrs['data-column']).filter(Boolean);
    expect(ids.length).toBeGreaterThanOrEqual(4);
    for (const id of ids) expect(results.summary[id!]).toBeDefined();
  });

  it('an empty run still gives a well-formed chart that says so', () => {
    const svg = parseXml(renderChart({ summary: {} }));
    expect(texts(svg)).toContain('No side-by-side results in this run.');
  });
});

describe('benchmark targets (native-bench/targets.mjs)', () => {
  it('judges tether against each target and against the naive proxy', () => {
    const rows = evaluateTargets(fullResults().summary);
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(rows.map((r) => r.id)).not.toContain('http-affinity.rps');
    expect(byId['bulk.mbPerS']!.target).toEqual({ text: '≥ 1.00× HAProxy', met: true }); // 1.10×
    expect(byId['bulk.mbPerS4']!.target!.met).toBe(false); // 0.69×
    expect(byId['http.rps']!.target!.met).toBe(true);
    expect(byId['connrate.cps']!.target!.met).toBe(false); // 0.69× < 0.8×
    expect(byId['ws.ws1P99Ms']!.target!.met).toBe(true); // 1.10× ≤ 1.2×
    expect(byId['ws.wsNP99Ms']!.target!.met).toBe(false); // 1.58×
    expect(byId['memory.kibPerConn']!.target).toEqual({ text: '≤ 8 KiB', met: false }); // 9 KiB
    expect(byId['http.p99Ms']!.target).toBeNull();
    // ahead of naive: more in ↑ columns, less in ↓ columns
    expect(byId['bulk.mbPerS']!.aheadOfNaive).toBe(true);
    expect(byId['bulk.mbPerS4']!.aheadOfNaive).toBe(false);
    expect(byId['http.p99Ms']!.aheadOfNaive).toBe(false); // 2 ms vs 1.8 ms
    expect(byId['memory.kibPerConn']!.aheadOfNaive).toBe(true); // 9 vs 14 KiB
    expect(byId['ws.ws1P50Ms']!.aheadOfNaive).toBe(false); // equal is not ahead

    const md = targetsMarkdown(rows);
    expect(md).toContain('| KiB per idle conn ↓ | ≤ 8 KiB | 9.00 | 3.00× | no | 0.64× | **yes** |');
    expect(md).toContain('tether: targets met: 3 of 7; ahead of the naive Node pipe in 4 of 10 columns.');
  });

  it('says "not measured" when tether or HAProxy did not run', () => {
    const summary = fullResults().summary;
    delete summary['connrate.cps']!.byBalancer.haproxy;
    summary['bulk.mbPerS']!.byBalancer.tether!.median = null;
    const byId = Object.fromEntries(evaluateTargets(summary).map((r) => [r.id, r]));
    expect(byId['connrate.cps']!.target!.met).toBeNull();
    expect(byId['bulk.mbPerS']!.target!.met).toBeNull();
    expect(byId['bulk.mbPerS']!.aheadOfNaive).toBeNull();
    expect(targetsMarkdown(evaluateTargets(summary))).toContain('| not measured |');
  });
});

describe('http mode targets (native-bench/targets.mjs, issue 17)', () => {
  /** An http-affinity column: each tether row held to the HAProxy row that routes the same way. */
  function rowsColumn(label: string, better: 'higher' | 'lower', medians: Record<string, number | null>): ResultsColumn {
    const byBalancer: ResultsColumn['byBalancer'] = {};
    for (const [row, median] of Object.entries(medians)) {
      const counterpart = { 'tether-hash': 'haproxy-hash', 'tether-hash-close': 'haproxy-hash-close' }[row];
      byBalancer[row] = { median, runs: median === null ? [] : [median], label: row, ...(counterpart ? { haproxyCounterpart: counterpart } : {}) };
    }
    return { label, better, byBalancer };
  }
  const summary = (): Record<string, ResultsColumn> => ({
    'http-affinity.rps': rowsColumn('session-keyed HTTP req/s', 'higher', {
      direct: 40000,
      'tether-hash': 25000, // 0.83×: met
      'haproxy-hash': 30000,
      'tether-hash-close': 5000, // 0.5×: not met
      'haproxy-hash-close': 10000,
    }),
    'http-affinity.cpuUsPerReq': rowsColumn('session-keyed HTTP CPU µs/req', 'lower', {
      'tether-hash': 45, // 1.5×: met (the bound itself)
      'haproxy-hash': 30,
      'tether-hash-close': null, // not measured
      'haproxy-hash-close': 100,
    }),
    'http-memory.kibPerConn': rowsColumn('KiB per idle http conn', 'lower', { 'tether-hash': 11, 'haproxy-hash': 2, 'nginx-hash': 1 }),
  });

  it('holds every tether row to its HAProxy counterpart, grouped by row', () => {
    const rows = evaluateHttpTargets(summary());
    expect(rows.map((r) => [r.row, r.column, r.target.met])).toEqual([
      ['tether-hash', 'session-keyed HTTP req/s ↑', true],
      ['tether-hash', 'session-keyed HTTP CPU µs/req ↓', true],
      ['tether-hash', 'KiB per idle http conn ↓', false],
      ['tether-hash-close', 'session-keyed HTTP req/s ↑', false],
      ['tether-hash-close', 'session-keyed HTTP CPU µs/req ↓', null],
    ]);
    expect(rows[0]!.target.text).toBe('≥ 0.80× HAProxy');
    expect(rows[2]!.target.text).toBe('≤ 10 KiB');
    const md = httpTargetsMarkdown(rows);
    expect(md).toContain('| tether-hash-close | session-keyed HTTP req/s ↑ | ≥ 0.80× HAProxy | 5,000 | 10,000 | 0.50× | no |');
    expect(md).toContain('| tether-hash | KiB per idle http conn ↓ | ≤ 10 KiB | 11.0 | 2.00 | 5.50× | no |');
    expect(md).toContain('tether http mode: targets met: 2 of 4.');
  });

  it('is empty without http results, and stays out of the side-by-side targets', () => {
    expect(evaluateHttpTargets({})).toEqual([]);
    expect(httpTargetsMarkdown([])).toBe('');
    expect(evaluateTargets(summary())).toEqual([]);
  });
});
