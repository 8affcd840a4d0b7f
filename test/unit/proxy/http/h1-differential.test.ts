import { describe, expect, it } from 'vitest';
import { H1Error, h1ErrorName, type H1ErrorCode } from '../../../../src/proxy/http/h1/index.js';
import { fuzzCase, fuzzSeed, runFuzz, type FuzzCase } from '../../../helpers/fuzz.js';
import { driveTether, type DrivenMessage, type DrivenResult } from '../../../helpers/h1-drive.js';
import { generatePipeline, generateRequest, generateResponse, H1_DICTIONARY } from '../../../helpers/h1-generate.js';
import { llhttpParse, type OracleMessage, type OracleResult } from '../../../helpers/llhttp-oracle.js';
import { seededRandom } from '../../../helpers/random.js';
import { HTTP_DICTIONARY } from '../../../fixtures/http-heads.js';

/**
 * Differential fuzz of tether's HTTP/1 parsers against llhttp (node:http's parser,
 * driven directly, strict flags). Property: tether accepts what llhttp accepts, or is
 * stricter in one of the classes named below; it never accepts a message llhttp
 * refuses, and where both accept, they agree on the start line, the fields, the
 * framing and the body length. Reproduce a failure with FUZZ_SEED / FUZZ_CASE.
 */

const MAX_HEAD = 64 * 1024;
const CASES = Number(process.env.H1_FUZZ_CASES ?? 100_000);

interface Refusal {
  readonly kind: 'request' | 'response';
  readonly input: Buffer;
  /** The message tether refused, as llhttp read it. */
  readonly oracle: OracleMessage;
  readonly error: H1ErrorCode;
  /** Where that message starts in the input. */
  readonly start: number;
}

const TOKEN_LIST = /^[ \t,]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t,]*|[ \t]*$))*$/;
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const STRICT_CHUNK_LINE = new RegExp(`^[0-9a-fA-F]+(?:;${TOKEN}(?:=(?:${TOKEN}|"(?:[\\t !#-\\[\\]-~\\x80-\\xff]|\\\\[\\t -~\\x80-\\xff])*"))?)*$`);
const values = (m: OracleMessage, name: string): string[] => {
  const out: string[] = [];
  for (let k = 0; k < m.rawHeaders.length; k += 2) if (m.rawHeaders[k]!.toLowerCase() === name) out.push(m.rawHeaders[k + 1]!);
  return out;
};
const firstLine = (r: Refusal): string => {
  const text = r.input.subarray(r.start).toString('latin1').replace(/^(\r\n|\n)*/, '');
  return text.slice(0, Math.max(0, text.indexOf('\r\n')));
};
/** The chunk-size lines of the refused message's body, as far as the input goes. */
const bodyText = (r: Refusal): string => {
  const text = r.input.subarray(r.start).toString('latin1');
  return text.slice(text.indexOf('\r\n\r\n') + 4);
};

/** Where tether is stricter than llhttp, on purpose. A refusal llhttp does not make must fall in one. */
const STRICTER: readonly { name: string; reason: string; applies: (r: Refusal) => boolean }[] = [
  {
    name: 'version other than HTTP/1.0 and HTTP/1.1',
    reason: 'tether forwards HTTP/1.x only; llhttp takes HTTP/0.9 (no version) and HTTP/2.0 lines',
    applies: (r) => r.error === H1Error.BadVersion && !(r.oracle.versionMajor === 1 && r.oracle.versionMinor <= 1),
  },
  {
    name: 'more than one SP between request-line parts',
    reason: 'RFC 9112 3: exactly one SP; a lenient split is a desync vector',
    applies: (r) => r.error === H1Error.BadStartLine && /^\S+ {2,}|^\S+ \S+ {2,}/.test(firstLine(r)),
  },
  {
    name: 'asterisk-form on a method other than OPTIONS, or * with more after it',
    reason: 'RFC 9112 3.2.4: only OPTIONS takes *',
    applies: (r) => r.error === H1Error.BadTarget && r.oracle.url.startsWith('*') && (r.oracle.method !== 'OPTIONS' || r.oracle.url !== '*'),
  },
  {
    name: 'CONNECT target not host:port',
    reason: 'RFC 9112 3.2.3: CONNECT takes authority-form only; llhttp takes any URL',
    applies: (r) => r.error === H1Error.BadTarget && r.oracle.method === 'CONNECT' && !/^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._:[\]-]+):[0-9]{1,5}$/.test(r.oracle.url),
  },
  {
    name: 'absolute-form with userinfo, fragment, odd host characters or no host',
    reason: 'a proxy routes on the host: tether takes scheme://host[:port] then a path or query only',
    applies: (r) => r.error === H1Error.BadTarget && r.oracle.method !== 'CONNECT' && !r.oracle.url.startsWith('/') && !r.oracle.url.startsWith('*'),
  },
  {
    name: 'more than one Host',
    reason: 'RFC 9112 3.2: a server must answer 400; routing on Host would be ambiguous',
    applies: (r) => r.kind === 'request' && r.error === H1Error.DuplicateHost && values(r.oracle, 'host').length > 1,
  },
  {
    name: 'Transfer-Encoding not ending in chunked on an upgrade or CONNECT request',
    reason: 'llhttp reads no body after an upgrade and so checks no coding; tether checks framing on every head',
    applies: (r) => (r.error === H1Error.BadTransferEncoding || r.error === H1Error.TransferEncodingOnHttp10) && r.kind === 'request' && r.oracle.upgrade,
  },
  {
    name: 'Transfer-Encoding on HTTP/1.0',
    reason: 'RFC 9112 6.1: an HTTP/1.0 peer cannot mean chunked; llhttp honours it',
    applies: (r) => r.error === H1Error.TransferEncodingOnHttp10 && r.oracle.versionMinor === 0,
  },
  {
    name: 'Transfer-Encoding that is not a plain token list (parameters, odd characters)',
    reason: 'nothing legitimate sends transfer-parameters; fewer shapes to disagree on',
    applies: (r) => r.error === H1Error.BadTransferEncoding && values(r.oracle, 'transfer-encoding').some((v) => !TOKEN_LIST.test(v)),
  },
  {
    name: 'a Transfer-Encoding line naming no coding (empty, or commas only)',
    reason: "llhttp versions differ (Node 20's ignores an empty line, Node 22's and 24's refuse it): framing no upstream could read otherwise",
    applies: (r) => r.error === H1Error.BadTransferEncoding && values(r.oracle, 'transfer-encoding').some((v) => /^[ \t,]*$/.test(v)),
  },
  {
    name: 'chunked applied more than once',
    reason: 'RFC 9112 6.1: a sender must not; llhttp refuses it in requests only',
    applies: (r) => r.error === H1Error.BadTransferEncoding && (values(r.oracle, 'transfer-encoding').join(',').match(/(^|,)[ \t]*chunked[ \t]*(?=,|$)/gi) ?? []).length > 1,
  },
  {
    name: 'Content-Length or Transfer-Encoding in the trailer section',
    reason: 'RFC 9110 6.5.1: framing fields have no meaning after the body',
    applies: (r) => r.error === H1Error.BadTrailer && /(?:^|\r\n)0+(?:;[^\r\n]*)?\r\n(?:[^\r\n]*\r\n)*(content-length|transfer-encoding):/i.test(bodyText(r)),
  },
  {
    name: 'response whose Transfer-Encoding does not end in chunked',
    reason: 'RFC 9112 6.3 would read it to close; tether refuses it (502) rather than guess',
    applies: (r) => r.kind === 'response' && r.error === H1Error.BadTransferEncoding && !/(^|,)[ \t]*chunked[ \t]*$/i.test(values(r.oracle, 'transfer-encoding').join(',')),
  },
  {
    name: 'HTAB after a Content-Length or Transfer-Encoding value',
    reason: "Node 20's llhttp refuses it where it reads the field, Node 22's and 24's take it as OWS: tether refuses it everywhere, as the strictest upstream would",
    applies: (r) =>
      (r.error === H1Error.BadTransferEncoding || r.error === H1Error.BadContentLength) &&
      /(^|\n)(transfer-encoding|content-length):[^\r\n]*\t[ \t]*\r/i.test(r.input.subarray(r.start).toString('latin1')),
  },
  {
    name: 'Connection that is not a token list',
    reason: 'hop-by-hop options must be readable to be stripped',
    applies: (r) => r.error === H1Error.BadConnection && values(r.oracle, 'connection').some((v) => !TOKEN_LIST.test(v)),
  },
  {
    name: 'Content-Length over 2^53 - 1',
    reason: 'lengths stay exact JavaScript numbers',
    applies: (r) => r.error === H1Error.BadContentLength && values(r.oracle, 'content-length').some((v) => /^\d+$/.test(v) && Number(v) > Number.MAX_SAFE_INTEGER),
  },
  {
    name: '1xx response with Content-Length or Transfer-Encoding',
    reason: 'RFC 9110 8.6 / RFC 9112 6.1: never sent; llhttp reads a body after 104-199 but not after 100-103',
    applies: (r) => r.error === H1Error.FramingOnInterim && r.oracle.statusCode < 200,
  },
  {
    name: 'status code below 100',
    reason: 'not a status RFC 9110 15 defines a class for',
    applies: (r) => r.error === H1Error.BadStatus && r.oracle.statusCode < 100,
  },
  {
    name: 'control characters in the reason phrase',
    reason: 'RFC 9112 4: reason-phrase is HTAB / SP / VCHAR / obs-text',
    // eslint-disable-next-line no-control-regex
    applies: (r) => r.error === H1Error.BadReason && /[\x00-\x08\x0a-\x1f\x7f]/.test(r.oracle.statusMessage),
  },
  {
    name: 'bare CR or bare LF among the empty lines before the start line',
    reason: 'CRLF only, everywhere (llhttp skips CR and LF there one by one)',
    applies: (r) => {
      const lead = /^[\r\n]*/.exec(r.input.subarray(r.start).toString('latin1'))![0];
      return (r.error === H1Error.BareLF || r.error === H1Error.BareCR) && !/^(\r\n)*$/.test(lead);
    },
  },
  {
    name: 'status line ending in CR without LF',
    reason: 'CRLF only, everywhere (llhttp lets a status line end in a lone CR)',
    applies: (r) => r.kind === 'response' && r.error === H1Error.BareCR && /^[^\r\n]*\r[^\n]/.test(r.input.subarray(r.start).toString('latin1')),
  },
  {
    name: 'chunk extension outside the RFC 9112 7.1.1 grammar (empty name or value, a quote inside a token)',
    reason: 'ext-name is a token, ext-val a token or a whole quoted-string; llhttp lets some shapes through',
    applies: (r) =>
      r.error === H1Error.BadChunkExtension &&
      bodyText(r)
        .split('\r\n')
        .some((line) => /^[0-9a-fA-F]+;/.test(line) && !STRICT_CHUNK_LINE.test(line)),
  },
  {
    name: 'chunk size over 2^53 - 1',
    reason: 'sizes stay exact JavaScript numbers',
    applies: (r) => r.error === H1Error.ChunkSizeTooLarge,
  },
];

/** Where tether reads Connection differently (keep-alive, upgrade), on purpose. */
const CONNECTION_DIFFERENCES: readonly { name: string; applies: (m: OracleMessage, input: string) => boolean }[] = [
  {
    // llhttp keeps an HTTP/1.0 connection open when keep-alive is named, close or not.
    name: 'close and keep-alive both named: close wins',
    applies: (m) => {
      const tokens = values(m, 'connection').join(',').toLowerCase().split(',').map((t) => t.trim());
      return tokens.includes('close') && tokens.includes('keep-alive');
    },
  },
  {
    // llhttp's matcher does not see `close\t` (HTAB then the line end) as close; RFC 9110 5.6.1 lists allow OWS there.
    name: 'HTAB around a Connection option: tether reads the list per RFC 9110 5.6.1',
    applies: (_m, input) => /connection:[^\r\n]*\t/i.test(input),
  },
];
const connectionDiffers = (m: OracleMessage, input: Buffer): boolean => {
  const text = input.toString('latin1');
  return CONNECTION_DIFFERENCES.some((d) => d.applies(m, text));
};

type Verdict = 'refused' | 'accepted' | 'partial' | 'absent';
function verdictOf(messages: readonly { complete: boolean }[], error: unknown, errorMessage: number, k: number): Verdict {
  if (error !== null && errorMessage === k) return 'refused';
  const m = messages[k];
  if (m === undefined) return 'absent';
  return m.complete ? 'accepted' : 'partial';
}

/** Compare two heads; false when they read Connection differently (a named difference): compare no further. */
function compareHeads(kind: 'request' | 'response', o: OracleMessage, t: DrivenMessage, input: Buffer, requestMethod: string | undefined): boolean {
  if (kind === 'request') {
    expect(t.method, 'method').toBe(o.method);
    expect(t.target, 'target').toBe(o.url);
  } else {
    expect(t.status, 'status').toBe(o.statusCode);
    expect(t.reason, 'reason').toBe(o.statusMessage);
  }
  expect(`1.${t.versionMinor}`, 'version').toBe(`${o.versionMajor}.${o.versionMinor}`);
  expect(t.rawHeaders, 'rawHeaders').toEqual(o.rawHeaders);
  if (connectionDiffers(o, input)) return false;
  if (kind === 'request') expect(t.upgrade || t.isConnect, 'upgrade').toBe(o.upgrade);
  // llhttp sets keep-alive before node's client tells it a HEAD response has no body: without a length it expects a close.
  const headWithoutLength = requestMethod === 'HEAD' && t.contentLength < 0 && !t.chunked;
  if (t.bodyKind !== 4 && !headWithoutLength) expect(t.keepAlive, 'keepAlive').toBe(o.keepAlive);
  return !headWithoutLength;
}

export interface Tally {
  accepted: number;
  refusedBoth: number;
  stricter: Map<string, number>;
}

/** Compare one case; throws on a disagreement not covered by STRICTER. */
function compare(kind: 'request' | 'response', input: Buffer, requestMethod: string | undefined, oracle: OracleResult, tether: DrivenResult, tally: Tally): void {
  for (let k = 0; ; k++) {
    const o = verdictOf(oracle.messages, oracle.error, oracle.errorMessage, k);
    const t = verdictOf(tether.messages, tether.error, tether.errorMessage, k);
    const om = oracle.messages[k];
    const tm = tether.messages[k];
    const sameConnection = om !== undefined && tm !== undefined ? compareHeads(kind, om, tm, input, requestMethod) : true;
    // Read differently on purpose (a named difference): what follows the head may be framed differently too.
    if (!sameConnection) {
      tally.accepted++;
      return;
    }
    if (t === 'refused') {
      if (o === 'refused' || o === 'absent') {
        tally.refusedBoth++;
        return;
      }
      const refusal: Refusal = { kind, input, oracle: om!, error: tether.error!, start: tether.lastStart };
      const cls = STRICTER.find((c) => c.applies(refusal));
      if (cls === undefined) throw new Error(`tether refused message ${k} (${h1ErrorName(tether.error!)}) that llhttp ${o}; no stricter class covers it`);
      tally.stricter.set(cls.name, (tally.stricter.get(cls.name) ?? 0) + 1);
      return;
    }
    if (o === 'refused') {
      if (t === 'absent') return;
      throw new Error(`tether ${t} message ${k} that llhttp refused (${oracle.error})`);
    }
    if (o !== t) throw new Error(`message ${k}: llhttp ${o}, tether ${t}`);
    if (o === 'absent') return;
    // node:http hands an upgrade's bytes over unparsed: no body to compare, nothing after.
    if (om!.upgrade) return;
    expect(tm!.bodyBytes, `message ${k} body bytes`).toBe(om!.bodyBytes);
    tally.accepted++;
    if (o === 'partial' || tether.stopped && k === tether.messages.length - 1) return;
    if (!om!.keepAlive || om!.upgrade) return;
  }
}

function runDifferential(kind: 'request' | 'response', seed: number, cases: number, timeLimitMs: number): Tally {
  const tally: Tally = { accepted: 0, refusedBoth: 0, stricter: new Map() };
  const generate = kind === 'request' ? generateRequest : generateResponse;
  const dictionary = [...HTTP_DICTIONARY, ...H1_DICTIONARY];
  runFuzz({
    seed,
    cases,
    timeLimitMs,
    corpus: [],
    check: (c: FuzzCase) => {
      // The valid message(s) of this case, then (for most cases) 1-4 mutations of them.
      const random = seededRandom((seed ^ Math.imul(c.index + 1, 0x2545f491)) >>> 0);
      const valid = Buffer.from(generatePipeline(random, generate), 'latin1');
      const requestMethod = kind === 'response' ? (random() < 0.1 ? 'HEAD' : random() < 0.03 ? 'CONNECT' : 'GET') : undefined;
      let input: Buffer = valid;
      let recipe = 'generated';
      if (random() >= 0.25) {
        const other = Buffer.from(generate(random), 'latin1');
        const mutated = fuzzCase({ seed, corpus: [{ name: 'generated', bytes: valid }, { name: 'other', bytes: other }], dictionary, randomShare: 0.02, tail: valid }, c.index);
        input = mutated.input;
        recipe = mutated.recipe;
      }
      const oracle = llhttpParse(kind, input, { maxHeaderSize: MAX_HEAD, ...(requestMethod ? { requestMethod } : {}) });
      const tether = driveTether(kind, input, { maxHeadBytes: MAX_HEAD, ...(requestMethod ? { requestMethod } : {}) });
      try {
        compare(kind, input, requestMethod, oracle, tether, tally);
      } catch (err) {
        const detail = `recipe ${recipe}\n  input ${JSON.stringify(input.toString('latin1'))} requestMethod ${requestMethod ?? '-'}\n  llhttp: ${JSON.stringify(oracle)}\n  tether: ${JSON.stringify(tether)}`;
        throw new Error(`${err instanceof Error ? err.message : String(err)}\n  ${detail}`, { cause: err });
      }
    },
  });
  return tally;
}

function report(kind: string, seed: number, tally: Tally): void {
  const lines = [...tally.stricter].map(([name, n]) => `    ${n} ${name}`).join('\n');
  console.log(`h1 differential ${kind}s (seed 0x${seed.toString(16)}): ${tally.accepted} messages agreed, ${tally.refusedBoth} refused by both, stricter:\n${lines}`);
}

describe('HTTP/1 parsers against llhttp', () => {
  it(`requests: ${CASES} generated and mutated cases`, () => {
    const seed = fuzzSeed(0x5eed_0001);
    const tally = runDifferential('request', seed, CASES, 60_000);
    report('request', seed, tally);
    // The generator must reach both sides of the property, or the test proves little.
    expect(tally.accepted).toBeGreaterThan(CASES / 10);
    expect(tally.refusedBoth).toBeGreaterThan(CASES / 10);
  }, 120_000);

  it(`responses: ${CASES} generated and mutated cases`, () => {
    const seed = fuzzSeed(0x5eed_0002);
    const tally = runDifferential('response', seed, CASES, 60_000);
    report('response', seed, tally);
    expect(tally.accepted).toBeGreaterThan(CASES / 10);
    expect(tally.refusedBoth).toBeGreaterThan(CASES / 10);
  }, 120_000);
});
