/**
 * One instance's /metrics from the control plane's exposition and each worker's
 * (each rendered in its own process by the sliced writer, admin/metrics.ts), merged
 * series by series:
 * - tether_* families are summed over the processes (every connection is counted
 *   by the one worker that relayed it), except
 * - tether_upstream_up: the control plane's (it alone checks health), and
 * - tether_event_loop_delay_seconds: the worst process's;
 * - everything else (process_*, nodejs_*: Node's default metrics) is per process:
 *   the control plane's series as they are, each worker's with a worker="ID" label.
 * Counters of workers that died stay in the sums (`Departed`), so totals only grow.
 */
import { formatValue } from '../admin/prom-text.js';

/** One family of an exposition: its HELP and TYPE lines and its samples, in order. */
export interface ParsedFamily {
  readonly name: string;
  readonly type: string;
  readonly head: readonly string[];
  /** Series (the sample's name and labels, as written) -> value. */
  readonly samples: Map<string, number>;
}

export type Exposition = Map<string, ParsedFamily>;

/** Where each family's value comes from when several processes have it. */
type MergeRule = 'sum' | 'max' | 'control-plane' | 'per-process';

const CONTROL_PLANE_ONLY = new Set(['tether_upstream_up']);
const WORST = new Set(['tether_event_loop_delay_seconds']);

function ruleOf(family: string): MergeRule {
  if (CONTROL_PLANE_ONLY.has(family)) return 'control-plane';
  if (WORST.has(family)) return 'max';
  return family.startsWith('tether_') ? 'sum' : 'per-process';
}

/** Counters and histograms summed over the workers (their values only grow): what a dead worker leaves in the sums. */
export function isMonotonic(family: ParsedFamily): boolean {
  return ruleOf(family.name) === 'sum' && (family.type === 'counter' || family.type === 'histogram');
}

export function parseExposition(text: string): Exposition {
  const families: Exposition = new Map();
  let current: { name: string; type: string; head: string[]; samples: Map<string, number> } | null = null;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) {
      const name = line.slice(7, line.indexOf(' ', 7) < 0 ? undefined : line.indexOf(' ', 7));
      current = { name, type: 'untyped', head: [line], samples: new Map() };
      families.set(name, current);
      continue;
    }
    if (current === null) continue;
    if (line.startsWith('# TYPE ')) {
      current.head.push(line);
      current.type = line.slice(line.lastIndexOf(' ') + 1);
      continue;
    }
    if (line.startsWith('#')) continue;
    // Label values here never hold a space before the value (names are checked): the last space splits.
    const space = line.lastIndexOf(' ');
    current.samples.set(line.slice(0, space), parseValue(line.slice(space + 1)));
  }
  return families;
}

function parseValue(text: string): number {
  if (text === 'Nan' || text === 'NaN') return Number.NaN;
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** `name{a="b"}` -> `name{a="b",worker="2"}`; `name` -> `name{worker="2"}`. */
function withWorker(series: string, id: number): string {
  const label = `worker="${id}"`;
  return series.endsWith('}') ? `${series.slice(0, -1)},${label}}` : `${series}{${label}}`;
}

/** What workers that exited had counted (their last answer): kept in the sums. */
export class Departed {
  readonly #families = new Map<string, Map<string, number>>();

  add(exposition: Exposition): void {
    for (const family of exposition.values()) {
      if (!isMonotonic(family)) continue;
      let kept = this.#families.get(family.name);
      if (kept === undefined) this.#families.set(family.name, (kept = new Map()));
      for (const [series, value] of family.samples) kept.set(series, (kept.get(series) ?? 0) + value);
    }
  }

  of(family: string): ReadonlyMap<string, number> | undefined {
    return this.#families.get(family);
  }
}

export interface WorkerExposition {
  readonly id: number;
  readonly exposition: Exposition;
}

/** Each family's text (HELP, TYPE, samples; no newline at its end), in the control plane's order. */
export function mergeFamilies(own: Exposition, workers: readonly WorkerExposition[], departed: Departed): string[] {
  const out: string[] = [];
  for (const family of own.values()) {
    const samples = new Map(family.samples);
    const rule = ruleOf(family.name);
    if (rule === 'per-process') {
      for (const { id, exposition } of workers) {
        for (const [series, value] of exposition.get(family.name)?.samples ?? []) samples.set(withWorker(series, id), value);
      }
    } else if (rule !== 'control-plane') {
      const combine = rule === 'max' ? Math.max : (a: number, b: number) => a + b;
      const sources = workers.map((w) => w.exposition.get(family.name)?.samples);
      if (isMonotonic(family)) sources.push(departed.of(family.name) as Map<string, number> | undefined);
      for (const source of sources) {
        for (const [series, value] of source ?? []) {
          const have = samples.get(series);
          samples.set(series, have === undefined ? value : combine(have, value));
        }
      }
    }
    const lines = [...family.head];
    for (const [series, value] of samples) lines.push(`${series} ${formatValue(value)}`);
    out.push(lines.join('\n'));
  }
  return out;
}
