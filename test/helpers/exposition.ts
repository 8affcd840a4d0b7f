/** The Prometheus text format (0.0.4), read back for tests. */

export interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
  /** The line's name and label text as written: the same series writes the same key. */
  readonly key: string;
}

export interface Exposition {
  readonly samples: Sample[];
  /** Metric family name -> type, from the `# TYPE` lines. */
  readonly types: Map<string, string>;
}

/**
 * A small parser for the Prometheus text format (0.0.4), enough for tests: throws on a
 * line that is neither a comment nor a sample, and on a series written twice.
 */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const key = `${m[1]!}{${m[2] ?? ''}}`;
    if (seen.has(key)) throw new Error(`series written twice: ${key}`);
    seen.add(key);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = m[3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== 'Nan' && raw !== 'NaN') throw new Error(`not a value: ${JSON.stringify(line)}`);
    samples.push({ name: m[1]!, labels, value, key });
  }
  if (text !== '' && !text.endsWith('\n')) throw new Error('no newline at the end');
  return { samples, types };
}

/** The value of the one sample of `name` whose labels are exactly `labels`; 0 when absent. */
export function value(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = e.samples.filter((s) => s.name === name && sameLabels(s.labels, labels));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} appears ${found.length} times`);
  return found[0]?.value ?? 0;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

export function series(e: Exposition, name: string): Sample[] {
  return e.samples.filter((s) => s.name === name);
}
