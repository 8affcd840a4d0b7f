/**
 * The Prometheus text exposition (0.0.4), written a slice of the event loop at a time.
 *
 * prom-client renders a family in one synchronous stretch (collect, hash every label
 * set, format every line); with thousands of upstreams that holds the loop that relays
 * bytes for milliseconds per family. metrics.ts writes its per-upstream families through
 * an ExpositionWriter instead, straight from its own records, and hands the other
 * families' text from prom-client to the same writer. The writer hands its text on
 * (to the HTTP response) each time it pauses, so no one turn encodes the whole scrape.
 *
 * Escaping and number formatting are prom-client 15's own (lib/registry.js:
 * getMetricsAsString, escapeString, escapeLabelValue; lib/util.js: getValueAsString),
 * so a family reads the same whichever of the two wrote it (test/unit/admin/prom-text.test.ts).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

export type FamilyType = 'counter' | 'gauge';

/**
 * How long one turn of the event loop may work before the writer yields, and how many
 * lines it may gather meanwhile. Writing a line is cheap (~0.1-0.2 us warm); joining
 * and encoding the lines a turn gathered is not: 10,000 lines (~900 KB) cost 1-3 ms
 * more in the turn that hands them on, which is why a line cap comes on top of the
 * clock. A whole scrape at 5,000 upstreams (~1.9 MB, ~25,000 lines) is ~10 ms of work;
 * on a 2-core Xeon, in 100 turns of 0.5-0.8 ms (a turn with a young-generation GC in
 * it: 1-2.5 ms), where 512 lines and 1 ms made turns of 0.8-1.1 ms and no cap made
 * turns of 3.5-5.6 ms. native-bench/scrape-stall.mjs measures what a relayed byte waits.
 */
export const SLICE_MS = 0.5;
export const SLICE_LINES = 256;

/** Steps between two looks at the clock (a look costs 50-150 ns). */
const CHECK_EVERY = 32;

const TEXT_SPECIALS = /[\\\n]/;
const LABEL_SPECIALS = /[\\\n"]/;

/** HELP text and names: backslash and newline escaped (prom-client's escapeString). */
export function escapeText(text: string): string {
  return TEXT_SPECIALS.test(text) ? text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : text;
}

/** A label value: backslash, newline and double quote escaped (prom-client's escapeLabelValue). */
export function escapeLabelValue(value: string): string {
  return LABEL_SPECIALS.test(value) ? escapeText(value).replace(/"/g, '\\"') : value;
}

/** `name="value"`, the value escaped. */
export function label(name: string, value: string): string {
  return `${name}="${escapeLabelValue(value)}"`;
}

/**
 * A sample value as prom-client 15 writes it: `Nan` (sic: its spelling, kept so the
 * text does not change), `+Inf`, `-Inf`, else JavaScript's own formatting of the number.
 */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'Nan';
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf';
  return `${value}`;
}

/** The `# HELP` and `# TYPE` lines of a family (no newline after them). */
export function familyHead(name: string, help: string, type: FamilyType): string {
  const escaped = escapeText(name);
  return `# HELP ${escaped} ${escapeText(help)}\n# TYPE ${escaped} ${type}`;
}

export interface WriterOptions {
  /** See SLICE_MS. */
  readonly sliceMs?: number;
  /** See SLICE_LINES. */
  readonly sliceLines?: number;
}

/**
 * Writes families one after another, as prom-client's registry joins them (a family's
 * lines joined by "\n", families by a blank line, "\n" at the end), and decides when the
 * caller should yield: loops call due() after each sample and await pause() when it says so.
 */
export class ExpositionWriter {
  readonly #emit: (text: string) => void;
  readonly #sliceMs: number;
  readonly #sliceLines: number;
  #pieces: string[] = [];
  #families = 0;
  #steps = 0;
  #sliceStart = performance.now();

  /** `emit` receives the text in order, a slice's worth at a time; their concatenation is the exposition. */
  constructor(emit: (text: string) => void, options: WriterOptions = {}) {
    this.#emit = emit;
    this.#sliceMs = options.sliceMs ?? SLICE_MS;
    this.#sliceLines = options.sliceLines ?? SLICE_LINES;
  }

  /** Starts a family with its HELP and TYPE lines; samples follow. */
  family(name: string, help: string, type: FamilyType): void {
    this.text(familyHead(name, help, type));
  }

  /** A whole family's text as prom-client renders it (no newline at its end). */
  text(family: string): void {
    this.#pieces.push(this.#families++ === 0 ? family : `\n\n${family}`);
  }

  /** One sample line of the family started last. */
  sample(series: string, value: number): void {
    this.#pieces.push(`\n${series} ${formatValue(value)}`);
  }

  /**
   * True once this turn's slice is spent: SLICE_LINES lines gathered, or SLICE_MS gone
   * (looked at every CHECK_EVERY calls only).
   */
  due(): boolean {
    if (this.#pieces.length >= this.#sliceLines) return true;
    if (++this.#steps < CHECK_EVERY) return false;
    this.#steps = 0;
    return this.overdue();
  }

  /** True once this turn's slice is spent (looks at the clock now). */
  overdue(): boolean {
    return performance.now() - this.#sliceStart >= this.#sliceMs;
  }

  /**
   * Hands on the text so far, then waits for the next turn of the event loop (I/O runs
   * meanwhile). A setImmediate queued from an I/O callback runs in the same loop
   * iteration, before any other I/O: a writer started from one (an HTTP request)
   * should pause once before its first slice, or its first two slices run as one turn.
   */
  async pause(): Promise<void> {
    this.#flush();
    await nextTurn();
    this.#steps = 0;
    this.#sliceStart = performance.now();
  }

  /** Ends the exposition (its final newline) and hands on the rest. */
  end(): void {
    if (this.#families > 0) this.#pieces.push('\n');
    this.#flush();
  }

  #flush(): void {
    if (this.#pieces.length === 0) return;
    const text = this.#pieces.join('');
    this.#pieces = [];
    this.#emit(text);
  }
}
