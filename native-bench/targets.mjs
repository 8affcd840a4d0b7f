/**
 * tether's targets in the side-by-side benchmark (issue 7), and how a run's results
 * measure up to them: the "Targets" table in results/NAME.md and the target marks in
 * the chart (chart.mjs).
 *
 * A target is either a ratio to HAProxy's median (`ratio`), at least that much in ↑
 * columns and at most that much in ↓ columns, or an absolute bound on tether's own
 * median (`absolute`, with its `unit`). Besides, tether should be ahead of the naive
 * Node pipe proxy in every column.
 *
 * http mode has targets of its own (issue 17, HTTP_TARGETS): each tether row of the
 * http-affinity workload against the HAProxy row that routes the same way, keep-alive
 * and Connection: close, and memory per idle keep-alive client connection
 * (http-memory).
 */
import { columnHeading, fmt, fmtRatio, sideBySideColumns } from './format.mjs';

/** Keyed by summary column id, `workload.metric`. */
export const TARGETS = {
  'bulk.mbPerS': { ratio: 1.0 },
  'bulk.mbPerS4': { ratio: 1.0 },
  'http.rps': { ratio: 1.0 },
  'connrate.cps': { ratio: 0.8 },
  'ws.ws1P99Ms': { ratio: 1.2 },
  'ws.wsNP99Ms': { ratio: 1.2 },
  'memory.kibPerConn': { absolute: 8, unit: 'KiB' },
};

/** "≥ 1.00× HAProxy" or "≤ 8 KiB": a target as text, for a column that is ↑ or ↓. */
export function targetText(target, better) {
  const op = better === 'higher' ? '≥' : '≤';
  return target.absolute !== undefined ? `${op} ${target.absolute} ${target.unit}` : `${op} ${fmtRatio(target.ratio)} HAProxy`;
}

/**
 * The target as a ratio to HAProxy's median, for drawing it on a ratio axis: an
 * absolute target divided by HAProxy's median. Null when it cannot be placed.
 */
export function targetRatio(target, haproxyMedian) {
  if (target.ratio !== undefined) return target.ratio;
  return Number.isFinite(haproxyMedian) && haproxyMedian > 0 ? target.absolute / haproxyMedian : null;
}

const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
/** Does `value` satisfy `limit` in a column where `better` is higher or lower? */
const meets = (value, limit, better) => (better === 'higher' ? value >= limit : value <= limit);

/**
 * One row per side-by-side column of `summary` (results/NAME.json `summary`):
 *   { id, label, heading, better, tether, haproxy, naive (medians or null),
 *     vsHaproxy (tether ÷ HAProxy), target: { text, met } | null (met is null when
 *     not measured), vsNaive (tether ÷ naive), aheadOfNaive (true, false, or null) }
 */
export function evaluateTargets(summary) {
  return sideBySideColumns(summary).map(([id, col]) => {
    const median = (b) => (isNumber(col.byBalancer[b]?.median) ? col.byBalancer[b].median : null);
    const tether = median('tether');
    const haproxy = median('haproxy');
    const naive = median('naive');
    const vsHaproxy = tether !== null && haproxy ? tether / haproxy : null;
    const vsNaive = tether !== null && naive ? tether / naive : null;
    const t = TARGETS[id];
    let target = null;
    if (t) {
      const value = t.absolute !== undefined ? tether : vsHaproxy;
      const limit = t.absolute ?? t.ratio;
      target = { text: targetText(t, col.better), met: value === null ? null : meets(value, limit, col.better) };
    }
    const aheadOfNaive =
      tether === null || naive === null ? null : col.better === 'higher' ? tether > naive : tether < naive;
    return { id, label: col.label, heading: columnHeading(col), better: col.better, tether, haproxy, naive, vsHaproxy, target, vsNaive, aheadOfNaive };
  });
}

const yesNo = (v) => (v === null ? 'not measured' : v ? '**yes**' : 'no');

/** The markdown section: a table of every column, then a one-line tally. */
export function targetsMarkdown(rows) {
  if (rows.length === 0) return '';
  const out = [
    '### tether against its targets',
    '',
    'Targets are ratios to HAProxy\'s median (memory: KiB per idle connection); every column should also beat the naive Node pipe proxy.',
    '',
    '| column | target | tether | tether ÷ HAProxy | met | tether ÷ naive | ahead of naive |',
    '| --- | --- | ---: | ---: | --- | ---: | --- |',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.heading} | ${r.target?.text ?? '—'} | ${fmt(r.tether)} | ${fmtRatio(r.vsHaproxy)} | ${r.target ? yesNo(r.target.met) : '—'} | ` +
        `${fmtRatio(r.vsNaive)} | ${yesNo(r.aheadOfNaive)} |`,
    );
  }
  const withTarget = rows.filter((r) => r.target && r.target.met !== null);
  const met = withTarget.filter((r) => r.target.met);
  const vsNaive = rows.filter((r) => r.aheadOfNaive !== null);
  const ahead = vsNaive.filter((r) => r.aheadOfNaive);
  const tally = [];
  if (withTarget.length) tally.push(`targets met: ${met.length} of ${withTarget.length}`);
  if (vsNaive.length) tally.push(`ahead of the naive Node pipe in ${ahead.length} of ${vsNaive.length} columns`);
  if (tally.length) out.push('', `tether: ${tally.join('; ')}.`);
  return out.join('\n');
}

/**
 * http mode's targets (issue 17), keyed by summary column id. In each column every
 * tether row is held to its HAProxy counterpart (the cell's `haproxyCounterpart`,
 * which the workload module sets: hash by hash, learned pins by stick table,
 * keep-alive by keep-alive, close by close).
 */
export const HTTP_TARGETS = {
  'http-affinity.rps': { ratio: 0.8 },
  'http-affinity.cpuUsPerReq': { ratio: 1.5 },
  'http-affinity.p99Ms': { ratio: 1.5 },
  'http-memory.kibPerConn': { absolute: 10, unit: 'KiB' },
};

/**
 * One row per tether row and http column of `summary` that has a target, grouped by
 * tether row: { row, label, column (its heading), tether, haproxy (medians or null),
 * vsHaproxy, target: { text, met } (met null when not measured) }.
 */
export function evaluateHttpTargets(summary) {
  const out = [];
  for (const [id, t] of Object.entries(HTTP_TARGETS)) {
    const col = summary?.[id];
    if (!col?.byBalancer) continue;
    for (const [row, cell] of Object.entries(col.byBalancer)) {
      if (!row.startsWith('tether')) continue;
      const peer = cell.haproxyCounterpart ? col.byBalancer[cell.haproxyCounterpart] : undefined;
      const tether = isNumber(cell.median) ? cell.median : null;
      const haproxy = isNumber(peer?.median) ? peer.median : null;
      const vsHaproxy = tether !== null && haproxy ? tether / haproxy : null;
      const value = t.absolute !== undefined ? tether : vsHaproxy;
      const met = value === null ? null : meets(value, t.absolute ?? t.ratio, col.better);
      out.push({ row, label: cell.label ?? row, column: columnHeading(col), tether, haproxy, vsHaproxy, target: { text: targetText(t, col.better), met } });
    }
  }
  const order = [...new Set(out.map((r) => r.row))];
  return out.sort((a, b) => order.indexOf(a.row) - order.indexOf(b.row));
}

/** The markdown section for http mode's targets: a table, then a one-line tally. */
export function httpTargetsMarkdown(rows) {
  if (rows.length === 0) return '';
  const out = [
    '### tether http mode against its targets (issue 17)',
    '',
    'Each tether row against the HAProxy row that routes the same way (hash by hash, learned pins by stick table), ' +
      'keep-alive and Connection: close alike; memory: KiB per idle keep-alive client connection.',
    '',
    '| tether row | column | target | tether | HAProxy | tether ÷ HAProxy | met |',
    '| --- | --- | --- | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    out.push(`| ${r.label} | ${r.column} | ${r.target.text} | ${fmt(r.tether)} | ${fmt(r.haproxy)} | ${fmtRatio(r.vsHaproxy)} | ${yesNo(r.target.met)} |`);
  }
  const measured = rows.filter((r) => r.target.met !== null);
  if (measured.length) out.push('', `tether http mode: targets met: ${measured.filter((r) => r.target.met).length} of ${measured.length}.`);
  return out.join('\n');
}

/**
 * Every core's targets (issue 18): tether with 2 workers against HAProxy and nginx
 * given 2 threads (`--peer-threads=2`), and against tether with 1 worker where the
 * point is that nothing got worse (bulk, CPU per connection: no hand-off cost).
 */
export const WORKER_TARGETS = [
  { id: 'connrate.cps', against: 'haproxy', ratio: 0.8 },
  { id: 'http.rps', against: 'haproxy', ratio: 1.0 },
  { id: 'bulk.mbPerS', against: 'tether', ratio: 0.9 },
  { id: 'bulk.mbPerS4', against: 'tether', ratio: 0.9 },
  { id: 'connrate.cpuUsPerConn', against: 'tether', ratio: 1.1 },
  { id: 'http.cpuUsPerReq', against: 'tether', ratio: 1.1 },
];

/** { column, against, target: { text, met }, workers (the 2-worker median), other, ratio } per measured target. */
export function evaluateWorkerTargets(summary) {
  const out = [];
  for (const t of WORKER_TARGETS) {
    const col = summary?.[t.id];
    if (!col?.byBalancer?.['tether-w2']) continue;
    const workers = isNumber(col.byBalancer['tether-w2'].median) ? col.byBalancer['tether-w2'].median : null;
    const other = isNumber(col.byBalancer[t.against]?.median) ? col.byBalancer[t.against].median : null;
    const ratio = workers !== null && other ? workers / other : null;
    const name = t.against === 'tether' ? 'tether, 1 worker' : 'HAProxy';
    const text = `${col.better === 'higher' ? '≥' : '≤'} ${fmtRatio(t.ratio)} ${name}`;
    out.push({ column: columnHeading(col), against: name, workers, other, ratio, target: { text, met: ratio === null ? null : meets(ratio, t.ratio, col.better) } });
  }
  return out;
}

/** The markdown section for every core's targets. */
export function workerTargetsMarkdown(rows, peerThreads) {
  if (rows.length === 0) return '';
  const out = [
    '### tether with 2 workers against its targets (issue 18)',
    '',
    `HAProxy \`nbthread ${peerThreads}\`, nginx \`worker_processes ${peerThreads}\`; "tether, 1 worker" is the same run's tether row.`,
    '',
    '| column | target | 2 workers | compared with | ratio | met |',
    '| --- | --- | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) out.push(`| ${r.column} | ${r.target.text} | ${fmt(r.workers)} | ${fmt(r.other)} | ${fmtRatio(r.ratio)} | ${yesNo(r.target.met)} |`);
  const measured = rows.filter((r) => r.target.met !== null);
  if (measured.length) out.push('', `tether, 2 workers: targets met: ${measured.filter((r) => r.target.met).length} of ${measured.length}.`);
  return out.join('\n');
}
