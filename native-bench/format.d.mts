// Types for format.mjs (the TypeScript tests import the benchmark's .mjs modules).

export type BalancerId = 'direct' | 'tether' | 'tether-base' | 'tether-w2' | 'tether-node' | 'tether-w2-node' | 'naive' | 'haproxy' | 'nginx';

/** One balancer's cell in a summary column of results/NAME.json. */
export interface ResultsCell {
  median: number | null;
  runs?: number[];
  vsDirect?: number | null;
  vsHaproxy?: number | null;
  /** Rows of their own (http-affinity, http-memory): the HAProxy row it is held to, its name. */
  haproxyCounterpart?: string;
  label?: string;
}

/** One column of results/NAME.json `summary`, keyed there by `workload.metric`. */
export interface ResultsColumn {
  label: string;
  better: 'higher' | 'lower';
  workload?: string;
  metric?: string;
  byBalancer: Record<string, ResultsCell>;
}

/** What run.mjs writes to results/NAME.json, as far as the chart and targets read it. */
export interface BenchResults {
  date?: string;
  machine?: { cpus: number; cpuModel: string; node: string };
  options?: { rounds?: number; duration?: number };
  summary: Record<string, ResultsColumn>;
}

export const BALANCER_ORDER: readonly BalancerId[];
export const BALANCER_LABELS: Readonly<Record<BalancerId, string>>;
export function fmt(v: number | null | undefined): string;
export function fmtRatio(v: number | null | undefined): string;
export function sideBySideColumns(summary: Record<string, ResultsColumn> | undefined): Array<[string, ResultsColumn]>;
export function columnHeading(col: ResultsColumn): string;
