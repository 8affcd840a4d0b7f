import type net from 'node:net';
import { seededRandom } from './random.js';

/**
 * A small seeded fuzzer for the readers that face hostile bytes (the PROXY header
 * reader, the HTTP head reader). Each case is generated from the run's seed and its
 * own index alone, so any case can be rebuilt without the ones before it: a failure
 * names the seed and the index, and `fuzzCase(options, index)` (or FUZZ_SEED /
 * FUZZ_CASE, see `fuzzSeed`, `runFuzz` and `runFuzzAsync`) reproduces it exactly.
 *
 * Cases are random bytes (sometimes behind a known prefix, so the deep states of a
 * reader are reached) or a valid input from the corpus put through 1-4 mutations in
 * the style of AFL's havoc stage: bit flips, interesting bytes and 16-bit values
 * (length fields), insertions, deletions, truncation, duplicated runs, dictionary
 * tokens, and splices with another corpus entry.
 */

export interface CorpusEntry {
  readonly name: string;
  readonly bytes: Buffer;
}

export interface FuzzOptions {
  /** The run's seed: printed on failure; the same seed gives the same cases. */
  readonly seed: number;
  /** Valid inputs to mutate. */
  readonly corpus: readonly CorpusEntry[];
  /** Tokens worth inserting or writing over bytes (e.g. "TCP6", "\r\n", "Content-Length:"). */
  readonly dictionary?: readonly Buffer[];
  /** Prefixes random cases sometimes start with (e.g. a signature). */
  readonly prefixes?: readonly Buffer[];
  /** Share of cases that are random rather than mutated (default 0.1). */
  readonly randomShare?: number;
  /** Longest random case (default 300 bytes). */
  readonly maxRandomBytes?: number;
  /** Share of mutated cases with a tail of bytes after the input (default 0.3). */
  readonly tailShare?: number;
  /** Appended to such cases (default "payload"). */
  readonly tail?: Buffer;
}

export interface FuzzCase {
  readonly index: number;
  readonly input: Buffer;
  /** How it was made, e.g. "v1-tcp4: flip@7, u16(0xffff)@14". */
  readonly recipe: string;
  /** A generator for the test's own per-case choices (chunk sizes, settings), seeded from the case. */
  readonly random: () => number;
}

/** Bytes that make parsers take unusual branches: separators, digits, limits, high bit. */
export const INTERESTING_BYTES: readonly number[] = [
  0x00, 0x01, 0x09, 0x0a, 0x0d, 0x20, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x35, 0x39, 0x3a, 0x3b, 0x3d, 0x41, 0x50, 0x5b, 0x5d, 0x7f,
  0x80, 0xc0, 0xfe, 0xff, 0x11, 0x12, 0x21, 0x22, 0x31, 0x0c, 0x24,
];
/** 16-bit values for length fields: empty, one, byte edges, the sign bit, the maximum. */
export const INTERESTING_U16: readonly number[] = [0, 1, 2, 11, 12, 15, 16, 36, 127, 128, 216, 255, 256, 512, 4095, 4096, 4097, 0x7fff, 0x8000, 0xfffe, 0xffff];

/** The run's seed: FUZZ_SEED (decimal or 0x hex) when set, else `fallback`. */
export function fuzzSeed(fallback: number): number {
  const text = process.env.FUZZ_SEED;
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n)) throw new Error(`FUZZ_SEED: ${JSON.stringify(text)} is not an integer`);
  return n >>> 0;
}

/** A per-case seed from the run's seed and the index (murmur3's finaliser). */
function caseSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Case `index` of the run with these options. */
export function fuzzCase(options: FuzzOptions, index: number): FuzzCase {
  const random = seededRandom(caseSeed(options.seed, index));
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
  const byte = (): number => (random() < 0.5 ? pick(INTERESTING_BYTES) : int(256));
  const bytesOf = (n: number): number[] => Array.from({ length: n }, byte);

  if (random() < (options.randomShare ?? 0.1) || options.corpus.length === 0) {
    const prefixes = options.prefixes ?? [];
    const prefix = prefixes.length > 0 && random() < 0.5 ? pick(prefixes) : Buffer.alloc(0);
    const noise = Buffer.from(bytesOf(int((options.maxRandomBytes ?? 300) + 1)));
    return { index, input: Buffer.concat([prefix, noise]), recipe: `random, ${prefix.length}-byte prefix`, random: seededRandom(caseSeed(~options.seed, index)) };
  }

  const source = pick(options.corpus);
  const bytes = [...source.bytes];
  const steps: string[] = [];
  const dictionary = options.dictionary ?? [];
  const mutations = 1 + int(4);
  for (let m = 0; m < mutations; m++) {
    const at = int(bytes.length + 1);
    const kind = int(dictionary.length > 0 ? 11 : 9);
    switch (kind) {
      case 0:
        if (at < bytes.length) bytes[at] ^= 1 << int(8);
        steps.push(`flip@${at}`);
        break;
      case 1:
        if (at < bytes.length) bytes[at] = byte();
        steps.push(`set@${at}`);
        break;
      case 2: {
        // A length or port field: a 16-bit big-endian value over two bytes.
        const value = random() < 0.8 ? pick(INTERESTING_U16) : int(0x10000);
        if (at + 1 < bytes.length) bytes.splice(at, 2, value >>> 8, value & 0xff);
        steps.push(`u16(0x${value.toString(16)})@${at}`);
        break;
      }
      case 3: {
        const run = bytesOf(1 + int(8));
        bytes.splice(at, 0, ...run);
        steps.push(`insert(${run.length})@${at}`);
        break;
      }
      case 4: {
        const n = 1 + int(4);
        bytes.splice(at, n);
        steps.push(`delete(${n})@${at}`);
        break;
      }
      case 5:
        bytes.length = Math.min(bytes.length, at);
        steps.push(`truncate@${at}`);
        break;
      case 6: {
        // Repeat a run in place (a field given twice, a long digit string).
        const n = 1 + int(Math.min(16, Math.max(1, bytes.length - at)));
        const run = bytes.slice(at, at + n);
        const times = 1 + int(8);
        for (let t = 0; t < times; t++) bytes.splice(at, 0, ...run);
        steps.push(`repeat(${run.length}x${times})@${at}`);
        break;
      }
      case 7: {
        // Splice: this entry's head, another's tail.
        const other = pick(options.corpus).bytes;
        const from = int(other.length + 1);
        bytes.splice(at, bytes.length - at, ...other.subarray(from));
        steps.push(`splice@${at}`);
        break;
      }
      case 8: {
        const n = 1 + int(3);
        if (at < bytes.length) bytes.splice(at, n, ...bytes.slice(at, at + n).reverse());
        steps.push(`swap(${n})@${at}`);
        break;
      }
      case 9: {
        const token = pick(dictionary);
        bytes.splice(at, 0, ...token);
        steps.push(`token+${JSON.stringify(token.toString('latin1'))}@${at}`);
        break;
      }
      default: {
        const token = pick(dictionary);
        bytes.splice(at, token.length, ...token);
        steps.push(`token=${JSON.stringify(token.toString('latin1'))}@${at}`);
      }
    }
  }
  let input = Buffer.from(bytes);
  if (random() < (options.tailShare ?? 0.3)) {
    input = Buffer.concat([input, options.tail ?? Buffer.from('payload')]);
    steps.push('tail');
  }
  return { index, input, recipe: `${source.name}: ${steps.join(', ')}`, random: seededRandom(caseSeed(~options.seed, index)) };
}

export interface FuzzRun extends FuzzOptions {
  /** Cases to run (indices 0 .. cases-1). */
  readonly cases: number;
  /** Stop (and fail) if the cases take longer than this in all. */
  readonly timeLimitMs: number;
  /** One case that takes longer than this fails the run (default 5 s, far above any scheduler stall): a reader must stay linear. */
  readonly caseLimitMs?: number;
  /** Throws to fail the case. */
  readonly check: (c: FuzzCase) => void;
}

export interface FuzzReport {
  readonly seed: number;
  readonly cases: number;
  readonly elapsedMs: number;
}

/**
 * Run `cases` cases through `check`. A failure is rethrown with the seed, the index,
 * the recipe and the input in hex. FUZZ_CASE=N runs case N alone (with FUZZ_SEED,
 * the seed a failure printed).
 */
export function runFuzz(run: FuzzRun): FuzzReport {
  const indices = onlyCase();
  const started = performance.now();
  const deadline = started + run.timeLimitMs;
  const caseLimit = run.caseLimitMs ?? 5_000;
  let done = 0;
  const total = indices ? 1 : run.cases;
  for (let k = 0; k < total; k++) {
    const index = indices ? indices[0]! : k;
    const c = fuzzCase(run, index);
    const t0 = performance.now();
    try {
      run.check(c);
    } catch (err) {
      throw new Error(fuzzFailure(run.seed, c, err), { cause: err });
    }
    const t1 = performance.now();
    if (t1 - t0 > caseLimit) throw new Error(`fuzz case ${index} (seed 0x${run.seed.toString(16)}) took ${Math.round(t1 - t0)} ms: ${c.recipe}`);
    done++;
    if (t1 > deadline) throw new Error(`fuzz run (seed 0x${run.seed.toString(16)}) passed its ${run.timeLimitMs} ms limit after ${done} of ${total} cases`);
  }
  return { seed: run.seed, cases: done, elapsedMs: Math.round(performance.now() - started) };
}

/** FUZZ_CASE=N: run case N alone. */
function onlyCase(): number[] | null {
  const only = process.env.FUZZ_CASE;
  return only !== undefined && only !== '' ? [Number(only)] : null;
}

/** How a failed case is reported: seed, index, how to replay it, recipe, input, what went wrong. */
export function fuzzFailure(seed: number, c: FuzzCase, err: unknown): string {
  return (
    `fuzz case failed: seed 0x${seed.toString(16)} case ${c.index} (reproduce: FUZZ_SEED=0x${seed.toString(16)} FUZZ_CASE=${c.index})\n` +
    `  recipe: ${c.recipe}\n  input (${c.input.length} bytes): ${c.input.toString('hex')}\n  ${err instanceof Error ? err.message : String(err)}`
  );
}

export interface AsyncFuzzRun extends FuzzOptions {
  /** Cases to run (indices 0 .. cases-1). */
  readonly cases: number;
  /** Cases in flight at once (each typically a connection). */
  readonly concurrency: number;
  /** Fail if the cases take longer than this in all (no new case starts after it). */
  readonly timeLimitMs: number;
  /** A case whose check has not settled after this long fails as a hang (default 15 s). */
  readonly caseLimitMs?: number;
  /** Rejects to fail the case. */
  readonly check: (c: FuzzCase) => Promise<void>;
}

/**
 * `runFuzz` for checks that wait on sockets: `concurrency` cases at a time, each
 * rebuilt from the seed and its index. Every failure is kept (a check that hangs
 * past `caseLimitMs` is one); after the run they are thrown together, the first
 * five in full, each with its FUZZ_SEED / FUZZ_CASE line. FUZZ_CASE=N runs case N
 * alone.
 */
export async function runFuzzAsync(run: AsyncFuzzRun): Promise<FuzzReport> {
  const indices = onlyCase();
  const total = indices ? 1 : run.cases;
  const started = performance.now();
  const deadline = started + run.timeLimitMs;
  const caseLimit = run.caseLimitMs ?? 15_000;
  const failures: string[] = [];
  let next = 0;
  let done = 0;
  let late = false;
  const one = async (c: FuzzCase): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no end within ${caseLimit} ms`)), caseLimit);
    });
    try {
      await Promise.race([run.check(c), hang]);
    } catch (err) {
      failures.push(fuzzFailure(run.seed, c, err));
    } finally {
      clearTimeout(timer);
    }
  };
  const worker = async (): Promise<void> => {
    while (next < total) {
      if (performance.now() > deadline) {
        late = true;
        return;
      }
      const k = next++;
      await one(fuzzCase(run, indices ? indices[0]! : k));
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(run.concurrency, total) }, worker));
  if (failures.length > 0) {
    throw new Error(`${failures.length} of ${done} fuzz cases failed (seed 0x${run.seed.toString(16)}); the first ${Math.min(5, failures.length)}:\n${failures.slice(0, 5).join('\n')}`);
  }
  if (late) throw new Error(`fuzz run (seed 0x${run.seed.toString(16)}) passed its ${run.timeLimitMs} ms limit after ${done} of ${total} cases`);
  return { seed: run.seed, cases: done, elapsedMs: Math.round(performance.now() - started) };
}

/**
 * Send a case's parts one per event-loop turn (so the reader sees them as separate
 * chunks), then a FIN when `fin`; stops early once `stopped()` says the case ended.
 */
export function writeParts(socket: net.Socket, parts: readonly Buffer[], fin: boolean, stopped: () => boolean = () => false): void {
  let next = 0;
  const writeNext = (): void => {
    if (stopped()) return;
    const part = parts[next++];
    if (part === undefined) {
      if (fin) socket.end();
      return;
    }
    socket.write(part);
    setImmediate(writeNext);
  };
  writeNext();
}
