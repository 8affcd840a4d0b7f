/**
 * How the side-by-side benchmark names its balancers and prints its numbers, shared by
 * run.mjs (tables), targets.mjs (the targets table) and chart.mjs (the SVG chart).
 */

/** Balancers of the side-by-side, in table order. */
export const BALANCER_ORDER = ['direct', 'tether', 'tether-base', 'tether-w2', 'tether-node', 'tether-w2-node', 'naive', 'haproxy', 'nginx'];

export const BALANCER_LABELS = {
  direct: 'direct (no balancer)',
  tether: 'tether',
  'tether-base': 'tether, baseline build',
  'tether-w2': 'tether, 2 workers',
  // run.mjs --node=PATH names the version.
  'tether-node': 'tether, another Node',
  'tether-w2-node': 'tether, 2 workers, another Node',
  naive: 'naive Node pipe',
  haproxy: 'HAProxy',
  nginx: 'nginx stream',
};

/** A median or a run's value: grouped thousands, three significant digits below 1. */
export function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.1 ? 3 : a > 0 ? 4 : 0;
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export const fmtRatio = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : `${v.toFixed(2)}×`);

/**
 * The columns of the side-by-side table in a results summary (results/NAME.json
 * `summary`): those whose rows are all balancers of BALANCER_ORDER. Workloads with
 * rows of their own (http-affinity) share the summary and are left out.
 * Returns [id, column] pairs in summary order.
 */
export function sideBySideColumns(summary) {
  return Object.entries(summary ?? {}).filter(
    ([, col]) => col?.byBalancer && Object.keys(col.byBalancer).length > 0 && Object.keys(col.byBalancer).every((b) => BALANCER_ORDER.includes(b)),
  );
}

/** The column heading: its label and ↑ (higher is better) or ↓. */
export const columnHeading = (col) => `${col.label} ${col.better === 'higher' ? '↑' : '↓'}`;
