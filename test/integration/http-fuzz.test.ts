import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FUZZ_MAX_HEAD_BYTES, HTTP_CORPUS, HTTP_DICTIONARY, HTTP_PREFIXES, HTTP_TAIL } from '../fixtures/http-heads.js';
import { waitFor } from '../helpers/clients.js';
import { fuzzCase, fuzzFailure, fuzzSeed, runFuzzAsync, writeParts, type FuzzCase, type FuzzOptions } from '../helpers/fuzz.js';
import { readResponses, ReferenceParser, startAttributingUpstream, tetherModel, type Answer, type AttributingUpstream, type SeenLine } from '../helpers/http-fuzz.js';
import { metricSum, spawnedAddresses, spawnTether, type TetherProcess } from '../helpers/tether.js';

/**
 * Issue 8, hostile input: http mode's request reading (src/proxy/http/connection.ts
 * over the parsers in src/proxy/http/h1/) under seeded random and mutated request
 * streams, every one through real sockets to a running tether.
 *
 * Two oracles. tether's parsers run over each case with no sockets
 * (test/helpers/http-fuzz.ts, tetherModel) say which requests the bytes hold, how
 * the stream ends, and what a client should get back when the upstreams answer like
 * the fuzz upstream; and llhttp (a node:http server fed the bytes directly) must read
 * the same requests as far as tether's parsers go, so tether never forwards a request
 * Node's own parser would not see. Then, through tether:
 *  - the case ends (answered or closed) within a bound, and the process never crashes
 *    or logs an error;
 *  - the upstreams see only requests the model saw, never an extra (smuggled) one,
 *    and all of them when the stream was clean and the client waited;
 *  - a clean stream gets exactly the model's answers, each naming the request it
 *    answers (`x-request`), in order;
 *  - a stream that routes no request gets 400 / 431 / 501 (refused), 408 (cut short,
 *    client waiting) or 400 (cut short, then FIN), and a close.
 * A failure prints the seed and the case index; `FUZZ_SEED=.. FUZZ_CASE=..` replays it.
 */

const HEAD_TIMEOUT_MS = 1_000;
const IDLE_TIMEOUT_MS = 1_500;
const CONCURRENCY = 200;

/** Each case's own client address: 127.100.0.0 + index (loopback; nothing shared between cases). */
function caseAddress(index: number): string {
  const n = 100 * 65536 + index;
  return `127.${n >>> 16}.${(n >>> 8) & 255}.${n & 255}`;
}

function caseIndex(address: string): number {
  const [, a, b, c] = address.split('.').map(Number) as [number, number, number, number];
  return ((a << 16) | (b << 8) | c) - 100 * 65536;
}

interface ThrowResult {
  readonly bytes: Buffer;
  /** tether closed the connection (rather than the client, after its answers). */
  readonly closed: boolean;
  /** A socket error the client saw after connecting (ECONNRESET, EPIPE), if any. */
  readonly error: string | null;
  readonly ms: number;
}

/**
 * Send `parts` (a setImmediate apart, then a FIN when `fin`) from `localAddress`.
 * Ends when tether closes the connection, or, with `finals`, once that many final
 * responses are in (then the client closes).
 */
function throwAt(port: number, localAddress: string, parts: Buffer[], fin: boolean, finals: number | null): Promise<ThrowResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress, noDelay: true });
    const chunks: Buffer[] = [];
    const started = performance.now();
    let error: string | null = null;
    let connected = false;
    let settled = false;
    const timer = setTimeout(() => finish(new Error('neither answered nor closed within 12 s')), 12_000);
    const finish = (err: Error | null, closed = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve({ bytes: Buffer.concat(chunks), closed, error, ms: Math.round(performance.now() - started) });
    };
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) finish(err);
      error = err.code ?? err.message;
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (finals !== null && readResponses(Buffer.concat(chunks)).responses.length >= finals) finish(null, false);
    });
    socket.on('close', () => finish(null, true));
    socket.once('connect', () => {
      connected = true;
      writeParts(socket, parts, fin, () => settled);
    });
  });
}

/** `input` cut at two random places (empty parts dropped). */
function split(input: Buffer, random: () => number): Buffer[] {
  const cuts = [Math.floor(random() * (input.length + 1)), Math.floor(random() * (input.length + 1))].sort((a, b) => a - b);
  return [input.subarray(0, cuts[0]), input.subarray(cuts[0], cuts[1]), input.subarray(cuts[1])].filter((p) => p.length > 0);
}

/** The lines of `b` that `a` does not hold as often (multisets). */
function missingFrom(a: readonly SeenLine[], b: readonly SeenLine[]): SeenLine[] {
  const left = new Map<SeenLine, number>();
  for (const line of a) left.set(line, (left.get(line) ?? 0) + 1);
  const missing: SeenLine[] = [];
  for (const line of b) {
    const n = left.get(line) ?? 0;
    if (n === 0) missing.push(line);
    else left.set(line, n - 1);
  }
  return missing;
}

const show = (answers: readonly Answer[]): string => JSON.stringify(answers.map((a) => (a.request === null ? a.status : `${a.status} ${a.request}`)));

interface FuzzRunOptions {
  readonly seed: number;
  readonly cases: number;
  /**
   * TETHER_PROXY_PROTOCOL=v1: each client gets its own upstream connections, whose
   * PROXY header names it, so the upstreams put every request down to its case.
   * Without: tether's shared keep-alive connections, checked over the whole run.
   */
  readonly attribute: boolean;
}

interface Tally {
  clean: number;
  incomplete: number;
  error: number;
  fin: number;
  answered: number;
  closedUnanswered: number;
  /** Of those, streams that ended with the client's FIN. */
  closedUnansweredAfterFin: number;
  forwarded: number;
  tunnels: number;
  readonly statuses: Map<number, number>;
}

let proc: TetherProcess | null = null;
let upstreams: AttributingUpstream[] = [];

afterEach(async () => {
  proc?.kill('SIGKILL');
  proc = null;
  await Promise.all(upstreams.map((u) => u.close()));
  upstreams = [];
});

async function fuzzHttp(run: FuzzRunOptions): Promise<{ tally: Tally; elapsedMs: number }> {
  upstreams = await Promise.all(['a', 'b', 'c'].map((name) => startAttributingUpstream(name, run.attribute)));
  proc = spawnTether({
    TETHER_MODE: 'http',
    TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','),
    TETHER_LISTEN: '127.0.0.1:0',
    TETHER_ADMIN: '127.0.0.1:0',
    TETHER_HEALTH: 'off',
    // Every key source and both learn rules are read on every request.
    TETHER_KEY: 'header:x-key,cookie:sid,query:sid,path:^/files/([^/?]+),source-ip',
    TETHER_LEARN: 'set-cookie:sid,header:x-session=([A-Za-z0-9_-]+)',
    TETHER_PROXY_PROTOCOL: run.attribute ? 'v1' : 'off',
    TETHER_HEAD_TIMEOUT_MS: String(HEAD_TIMEOUT_MS),
    TETHER_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
    TETHER_MAX_HEAD_BYTES: String(FUZZ_MAX_HEAD_BYTES),
    // An access line per request would cost more than the cases; warnings and errors still show.
    TETHER_ACCESS_LOG: 'off',
  });
  const tether = proc;
  const { port, admin } = await spawnedAddresses(tether);
  const reference = new ReferenceParser(FUZZ_MAX_HEAD_BYTES);
  const options: FuzzOptions = { seed: run.seed, corpus: HTTP_CORPUS, dictionary: HTTP_DICTIONARY, prefixes: HTTP_PREFIXES, tail: HTTP_TAIL };

  /** Cases whose streams hold requests, by client address: what the upstreams may see, and whether they must see all of it. */
  const expected = new Map<string, { readonly requests: SeenLine[]; readonly all: boolean }>();
  const tally: Tally = { clean: 0, incomplete: 0, error: 0, fin: 0, answered: 0, closedUnanswered: 0, closedUnansweredAfterFin: 0, forwarded: 0, tunnels: 0, statuses: new Map() };

  const report = await runFuzzAsync({
    ...options,
    cases: run.cases,
    concurrency: CONCURRENCY,
    timeLimitMs: 240_000,
    caseLimitMs: 15_000,
    async check(c: FuzzCase) {
      const ref = tetherModel(c.input, FUZZ_MAX_HEAD_BYTES);
      // tether's parsers never take a request llhttp would not: what they read is what llhttp reads, as far as they go.
      const llhttp = await reference.parse(c.input);
      if (ref.requests.some((line, i) => llhttp.requests[i] !== line)) {
        throw new Error(`tether's parsers read ${JSON.stringify(ref.requests)} where llhttp reads ${JSON.stringify(llhttp.requests)}`);
      }
      tally[ref.verdict]++;
      // Streams cut short mostly end with a FIN: waiting out the head or idle timeout
      // for every one of them would make the run slow, not better.
      const fin = c.random() < (ref.verdict === 'incomplete' ? 0.9 : 0.25);
      if (fin) tally.fin++;
      const parts = split(c.input, c.random);
      const requests = ref.requests.length;
      // Exact: the client waits for every answer, and the model's upstream
      // answered every request in order on a connection that stayed open for them (not
      // closed early by an HTTP/1.0 answer or node:http's own 400, after which what
      // tether reads depends on how the reads split the stream). Upgrades included:
      // tether sends one only once the answers before it are out.
      const exact =
        !fin &&
        ref.verdict === 'clean' &&
        requests > 0 &&
        JSON.stringify(ref.responses.filter((a) => a.request !== null).map((a) => a.request)) === JSON.stringify(ref.requests) &&
        ref.responses.every((a) => a.status === 204 || a.status === 417 || a.status === 426);
      const address = caseAddress(c.index);
      const result = await throwAt(port, address, parts, fin, exact ? ref.responses.length : null);
      const answers = readResponses(result.bytes).responses;
      if (result.ms > 1000) (await import('node:fs')).appendFileSync('/tmp/slow.txt', `${result.ms} ${c.recipe} exact=${exact} fin=${fin} verdict=${ref.verdict} ${JSON.stringify(ref.requests)} answers=${show(answers)} closed=${result.closed}\n`);
      for (const a of answers) tally.statuses.set(a.status, (tally.statuses.get(a.status) ?? 0) + 1);
      if (answers.length > 0) tally.answered++;
      else tally.closedUnanswered++;
      if (answers.length === 0 && fin) tally.closedUnansweredAfterFin++;
      if (requests > 0) expected.set(run.attribute ? address : `${expected.size}`, { requests: ref.requests, all: exact });
      const context =
        `tether's parsers: ${ref.verdict}${ref.refusal ? ` (${ref.refusal.status})` : ''}, ${JSON.stringify(ref.requests)}, answers ${show(ref.responses)}; ` +
        `${parts.length} writes${fin ? ' + FIN' : ''}; tether answered ${show(answers)}${result.closed ? ' and closed' : ''}` +
        `${result.error ? ` (the client saw ${result.error})` : ''} after ${result.ms} ms`;
      const same = (a: readonly Answer[], b: readonly Answer[]): boolean => JSON.stringify(a) === JSON.stringify(b);
      if (exact) {
        if (!same(answers, ref.responses)) throw new Error(`${context}: expected the model's answers`);
        return;
      }
      if (!result.closed) throw new Error(`${context}: not closed`);
      // Routed requests (an upstream may answer before their bodies are in) leave the rest to timing.
      if ((ref.routed ?? requests) > 0) return;
      // No request reached an upstream's handler: the answers to those an upstream
      // refused itself (417 to an unknown Expect) come first, then tether's.
      if (!same(answers.slice(0, ref.responses.length), ref.responses)) throw new Error(`${context}: expected the upstream's own answers first`);
      let want: number[];
      if (ref.refusal !== null) {
        want = [...ref.responses.map((a) => a.status), ref.refusal.status];
      } else if (ref.responses.length > 0) {
        return;
      } else if (ref.verdict === 'incomplete') {
        want = fin ? [400] : [408];
      } else {
        // Nothing but empty lines: at a FIN the connection just closes; else the head times out.
        want = fin ? [] : [408];
      }
      // Empty lines before a request line count towards the head limit only within one
      // read, so where the reads split a stream of them decides between 431 and not.
      if (c.input.length > FUZZ_MAX_HEAD_BYTES && answers.length === want.length && answers.at(-1)?.status === 431) return;
      if (JSON.stringify(answers.map((a) => a.status)) !== JSON.stringify(want)) throw new Error(`${context}: expected ${JSON.stringify(want)}`);
    },
  });

  // The upstream connections close with their clients (with PROXY headers) or go idle;
  // once nothing is in flight and the private ones are gone, nothing more can arrive.
  await waitFor(async () => (await metricSum(admin, 'tether_connections_active')) === 0, 20_000, 'no request in flight');
  if (run.attribute) await waitFor(() => upstreams.every((u) => u.sockets.size === 0), 20_000, 'the upstream connections to close');
  const seenBy = new Map<string, SeenLine[]>();
  for (const u of upstreams) for (const [client, lines] of u.seen) seenBy.set(client, [...(seenBy.get(client) ?? []), ...lines]);
  for (const lines of seenBy.values()) {
    for (const line of lines) {
      if (line.startsWith('request ')) tally.forwarded++;
      else tally.tunnels++;
    }
  }
  const failures: string[] = [];
  if (run.attribute) {
    for (const [address, lines] of seenBy) {
      const want = expected.get(address);
      const extra = missingFrom(want?.requests ?? [], lines);
      if (extra.length > 0) {
        failures.push(fuzzFailure(run.seed, fuzzCase(options, caseIndex(address)), `the upstreams saw ${JSON.stringify(extra)} beyond the model's ${JSON.stringify(want?.requests ?? [])}`));
      }
    }
    for (const [address, want] of expected) {
      const missing = want.all ? missingFrom(seenBy.get(address) ?? [], want.requests) : [];
      if (missing.length > 0) {
        failures.push(
          fuzzFailure(run.seed, fuzzCase(options, caseIndex(address)), `a clean stream, but the upstreams never saw ${JSON.stringify(missing)} (they saw ${JSON.stringify(seenBy.get(address) ?? [])})`),
        );
      }
    }
  } else {
    // Shared connections: over the whole run, every request an upstream saw is one the
    // model saw (as often), and those of clean streams all arrived.
    const seen = seenBy.get('shared') ?? [];
    const all = [...expected.values()];
    const extra = missingFrom(all.flatMap((w) => w.requests), seen);
    if (extra.length > 0) failures.push(`seed 0x${run.seed.toString(16)}: the upstreams saw ${JSON.stringify(extra.slice(0, 10))} beyond what the model saw`);
    const missing = missingFrom(seen, all.filter((w) => w.all).flatMap((w) => w.requests));
    if (missing.length > 0) failures.push(`seed 0x${run.seed.toString(16)}: clean streams, but the upstreams never saw ${JSON.stringify(missing.slice(0, 10))}`);
  }
  expect(failures.slice(0, 5)).toEqual([]);

  // Still the same process, silent, and serving.
  expect(tether.child.exitCode).toBeNull();
  const res = await fetch(`http://127.0.0.1:${port}/after?sid=after`, { headers: { 'x-key': 'after' } });
  expect(res.status).toBe(204);
  expect(res.headers.get('x-upstream')).toMatch(/^[abc]$/);
  expect(tether.logs.filter((l) => Number(l.level) >= 40)).toEqual([]);
  expect(tether.stderr).toBe('');
  if (!process.env.FUZZ_CASE) expect(report.cases).toBe(run.cases);
  return { tally, elapsedMs: report.elapsedMs };
}

function summary(name: string, seed: number, cases: number, elapsedMs: number, tally: Tally): string {
  const statuses = [...tally.statuses].sort((x, y) => x[0] - y[0]).map(([s, n]) => `${s}: ${n}`).join(', ');
  return (
    `${name}: seed 0x${seed.toString(16)}, ${cases} cases in ${elapsedMs} ms: ` +
    `${tally.clean} clean, ${tally.incomplete} cut short, ${tally.error} refused (tether's parsers); ${tally.fin} ended with a FIN; ` +
    `${tally.answered} answered, ${tally.closedUnanswered} closed unanswered (${tally.closedUnansweredAfterFin} after a FIN); upstreams saw ${tally.forwarded} requests and ${tally.tunnels} upgrades; answers ${statuses}`
  );
}

describe('http mode: HTTP head fuzz', () => {
  it('100,000 mutated and random request streams, each client on its own upstream connections: no crash, no hang, each answered or closed, nothing smuggled', async () => {
    const cases = 100_000;
    const seed = fuzzSeed(0x4774);
    const { tally, elapsedMs } = await fuzzHttp({ seed, cases, attribute: true });
    if (process.env.FUZZ_CASE) return;
    // The mix reached every verdict and every answer often enough to mean something.
    expect(tally.clean).toBeGreaterThan(cases / 20);
    expect(tally.error).toBeGreaterThan(cases / 4);
    expect(tally.incomplete).toBeGreaterThan(cases / 40);
    expect(tally.forwarded).toBeGreaterThan(cases / 20);
    expect(tally.tunnels).toBeGreaterThan(cases / 200);
    for (const status of [204, 400, 408, 417, 426, 431]) expect(tally.statuses.get(status) ?? 0, `answers ${status}`).toBeGreaterThan(cases / 20_000);
    console.log(summary('HTTP head fuzz', seed, cases, elapsedMs, tally));
  }, 300_000);

  it('10,000 more over shared keep-alive upstream connections: every answer is its own request\'s, and nothing smuggled over the whole run', async () => {
    const cases = 10_000;
    const seed = fuzzSeed(0x4775);
    const { tally, elapsedMs } = await fuzzHttp({ seed, cases, attribute: false });
    if (process.env.FUZZ_CASE) return;
    expect(tally.forwarded).toBeGreaterThan(cases / 20);
    console.log(summary('HTTP head fuzz, shared upstream connections', seed, cases, elapsedMs, tally));
  }, 120_000);
});
