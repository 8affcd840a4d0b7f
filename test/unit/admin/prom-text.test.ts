import { Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { escapeLabelValue, escapeText, ExpositionWriter, formatValue, label, type FamilyType } from '../../../src/admin/prom-text.js';

/** Label values that need escaping, or look as if they did. */
const AWKWARD_VALUES = [
  '',
  'plain',
  'back\\slash',
  'trailing\\',
  '\\\\double',
  'quote"d',
  '"',
  '\\"',
  'new\nline',
  '\n',
  'literal \\n, not a newline',
  'tab\tand\rcarriage return',
  'mixed \\ " \n all',
  'ünïcødé 名前 🙂',
  'braces {x="y"} and, commas',
];

const VALUES = [0, 1, 42, 2 ** 53, 2 ** 53 + 2, 1.5, 0.1 + 0.2, 1e21, 1e-7, 123456789.125, -0, -3, NaN, Infinity, -Infinity];

/** The text prom-client 15's registry writes for one family (getSingleMetricAsString). */
async function promClientText(build: (registry: Registry) => void, name: string): Promise<string> {
  const registry = new Registry();
  build(registry);
  return registry.getSingleMetricAsString(name);
}

/** The same family through ExpositionWriter: `lines` pairs of {labels} text and value. */
async function ourText(name: string, help: string, type: FamilyType, lines: readonly (readonly [string, number])[], sliceLines = 1): Promise<{ text: string; pieces: number }> {
  const pieces: string[] = [];
  // Sliced by lines only: the time limit (0.5 ms) would make the count depend on load.
  const out = new ExpositionWriter((t) => pieces.push(t), { sliceLines, sliceMs: 60_000 });
  out.family(name, help, type);
  for (const [labels, value] of lines) {
    out.sample(labels === '' ? escapeText(name) : `${escapeText(name)}{${labels}}`, value);
    if (out.due()) await out.pause();
  }
  out.end();
  return { text: pieces.join(''), pieces: pieces.length };
}

describe('prom-text: the text exposition as prom-client 15 writes it', () => {
  it('label values: backslash, newline and double quote escaped, nothing else', async () => {
    const help = 'Help with a back\\slash, a "quote" and a\nnewline.';
    const expected = await promClientText((registry) => {
      const gauge = new Gauge({ name: 'x_awkward', help, labelNames: ['listener', 'upstream'], registers: [registry] });
      AWKWARD_VALUES.forEach((v, i) => gauge.set({ listener: v, upstream: AWKWARD_VALUES[AWKWARD_VALUES.length - 1 - i]! }, i));
    }, 'x_awkward');
    const mine = await ourText(
      'x_awkward',
      help,
      'gauge',
      AWKWARD_VALUES.map((v, i) => [`${label('listener', v)},${label('upstream', AWKWARD_VALUES[AWKWARD_VALUES.length - 1 - i]!)}`, i] as const),
    );
    expect(mine.text).toBe(`${expected}\n`);
    // The test means something: several values did need escaping.
    expect(AWKWARD_VALUES.filter((v) => escapeLabelValue(v) !== v).length).toBeGreaterThan(5);
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeText('a\\b"c\nd')).toBe('a\\\\b"c\\nd');
  });

  it('values: integers, fractions, large numbers, -0, NaN ("Nan", as prom-client spells it) and infinities', async () => {
    const expected = await promClientText((registry) => {
      const gauge = new Gauge({ name: 'x_values', help: 'values', labelNames: ['i'], registers: [registry] });
      VALUES.forEach((v, i) => gauge.set({ i: String(i) }, v));
    }, 'x_values');
    const mine = await ourText('x_values', 'values', 'gauge', VALUES.map((v, i) => [label('i', String(i)), v] as const), 4);
    expect(mine.text).toBe(`${expected}\n`);
    expect([NaN, Infinity, -Infinity, -0, 1e21].map(formatValue)).toEqual(['Nan', '+Inf', '-Inf', '0', '1e+21']);
  });

  it('a counter with three labels, and a family with no labels and no samples', async () => {
    const expected = await promClientText((registry) => {
      const counter = new Counter({ name: 'x_total', help: 'by outcome', labelNames: ['listener', 'upstream', 'outcome'], registers: [registry] });
      counter.inc({ listener: 'l"1', upstream: '', outcome: 'ok' }, 3);
      counter.inc({ listener: 'l"1', upstream: 'u\\1', outcome: 'timeout' }, 1);
    }, 'x_total');
    const mine = await ourText('x_total', 'by outcome', 'counter', [
      [`${label('listener', 'l"1')},${label('upstream', '')},${label('outcome', 'ok')}`, 3],
      [`${label('listener', 'l"1')},${label('upstream', 'u\\1')},${label('outcome', 'timeout')}`, 1],
    ]);
    expect(mine.text).toBe(`${expected}\n`);

    const labelled = await promClientText((registry) => {
      new Gauge({ name: 'x_empty', help: 'nothing yet', labelNames: ['a'], registers: [registry] });
    }, 'x_empty');
    expect((await ourText('x_empty', 'nothing yet', 'gauge', [])).text).toBe(`${labelled}\n`);
  });

  it('families are joined by a blank line and end with a newline; prom-client text passes through as it is', async () => {
    const registry = new Registry();
    const a = new Gauge({ name: 'x_a', help: 'a', labelNames: ['k'], registers: [registry] });
    a.set({ k: 'v' }, 1);
    new Counter({ name: 'x_b', help: 'b', registers: [registry] }).inc(2);
    const pieces: string[] = [];
    const out = new ExpositionWriter((t) => pieces.push(t), { sliceLines: 1 });
    out.family('x_a', 'a', 'gauge');
    out.sample(`x_a{${label('k', 'v')}}`, 1);
    await out.pause();
    out.text(await registry.getSingleMetricAsString('x_b'));
    out.end();
    expect(pieces.join('')).toBe(await registry.metrics());
    // Nothing written, nothing emitted (prom-client's registry would say "\n").
    const none: string[] = [];
    new ExpositionWriter((t) => none.push(t)).end();
    expect(none).toEqual([]);
  });

  it('hands its text on in slices, and the event loop runs between them', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => [label('n', String(i)), i] as const);
    const whole = await ourText('x_many', 'many', 'gauge', lines, 1_000);
    expect(whole.pieces).toBe(1);
    const sliced = await ourText('x_many', 'many', 'gauge', lines, 10);
    expect(sliced.text).toBe(whole.text);
    expect(sliced.pieces).toBeGreaterThanOrEqual(10);

    // A callback queued before the writer starts runs while it writes, not after.
    let ranAt = -1;
    let written = 0;
    setImmediate(() => (ranAt = written));
    const out = new ExpositionWriter(() => {}, { sliceLines: 10 });
    out.family('x_turns', 'turns', 'gauge');
    for (const [labels, value] of lines) {
      out.sample(`x_turns{${labels}}`, value);
      written++;
      if (out.due()) await out.pause();
    }
    out.end();
    expect(ranAt).toBeGreaterThan(0);
    expect(ranAt).toBeLessThan(lines.length);
  });
});
