import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RawClient, type RawResponse } from '../helpers/http.js';
import { seededRandom } from '../helpers/random.js';
import { startRawUpstream, type LoggedRequest, type RawAnswer, type RawUpstream } from '../helpers/raw-upstream.js';
import { startTether, type RunningTether } from '../helpers/tether.js';

/**
 * Upgrade smuggling and requests answered twice. A strict raw upstream logs every
 * request it reads off the wire, so whatever tether forwards, and on which upstream
 * connection, is on record: a refused Upgrade must not become a tunnel, a request
 * tether refuses must never reach an upstream, and a request an upstream answered
 * must have its answer reach the client.
 */

/** How the upstreams answer an Upgrade request; per test. */
let upgradeAnswer = 426;
let a: RawUpstream;
let b: RawUpstream;
let tether: RunningTether;
/** Keys that tether hashes to a and to b. */
let keyA = '';
let keyB = '';

function answerUpgrades(req: LoggedRequest): RawAnswer {
  if (req.headers.upgrade === undefined) return {};
  return upgradeAnswer === 101 ? { status: 101, reason: 'Switching Protocols', tunnel: true, delayMs: 100 } : { status: upgradeAnswer, reason: 'Refused' };
}

async function keyRoutedTo(upstream: string): Promise<string> {
  for (let i = 0; ; i++) {
    const key = `k${i}`;
    const res = await fetch(`${tether.admin}/route?key=${key}`);
    if (((await res.json()) as { upstream: string }).upstream === upstream) return key;
  }
}

beforeAll(async () => {
  a = await startRawUpstream('a', answerUpgrades);
  b = await startRawUpstream('b', answerUpgrades);
  tether = await startTether({
    TETHER_MODE: 'http',
    TETHER_UPSTREAMS: `a=${a.address},b=${b.address}`,
    TETHER_HEALTH: 'off',
    TETHER_KEY: 'header:x-key',
    TETHER_HEAD_TIMEOUT_MS: '2000',
  });
  keyA = await keyRoutedTo('a');
  keyB = await keyRoutedTo('b');
});

afterAll(async () => {
  await tether.close();
  await a.close();
  await b.close();
});

beforeEach(() => {
  upgradeAnswer = 426;
});

/** Every request either upstream logged, in arrival order. */
function logged(): LoggedRequest[] {
  return [...a.log, ...b.log].sort((x, y) => x.seq - y.seq);
}

function garbage(): string[] {
  return [...a.garbage, ...b.garbage];
}

/** Send `bytes` in one write; read responses until the connection closes (or `count` are in). */
async function converse(bytes: string, count = Infinity, timeoutMs = 5000): Promise<{ responses: RawResponse[]; closed: boolean }> {
  const client = new RawClient(tether.port);
  const responses: RawResponse[] = [];
  try {
    client.write(Buffer.from(bytes, 'latin1'));
    while (responses.length < count) {
      const res = await client.response(timeoutMs).catch(() => null);
      if (res === null) break;
      responses.push(res);
    }
    return { responses, closed: await client.closed(count === Infinity ? 100 : 300) };
  } finally {
    client.destroy();
  }
}

const upgrade = (target: string, key: string): string =>
  `GET ${target} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-key: ${key}\r\n\r\n`;
const plain = (target: string, key: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nHost: t\r\nx-key: ${key}\r\n${extra}\r\n`;

describe('http mode: an Upgrade the upstream refuses stays HTTP', () => {
  for (const status of [200, 405, 426]) {
    it(`answered ${status}: the refusal is relayed and the next request in the same write is routed by its own key`, async () => {
      upgradeAnswer = status;
      const before = logged().length;
      const { responses } = await converse(upgrade(`/up-${status}`, keyA) + plain(`/smuggled-${status}`, keyB, 'Connection: close\r\n'));
      expect(responses.map((r) => [r.status, r.headers['x-upstream']])).toEqual([
        [status, 'a'],
        [200, 'b'],
      ]);
      expect(responses[1]!.body).toBe(`b GET /smuggled-${status} 0\n`);
      // a read the upgrade request and nothing else; the next request went to b on its own.
      expect(logged().slice(before).map((r) => [r.upstream, r.target])).toEqual([
        ['a', `/up-${status}`],
        ['b', `/smuggled-${status}`],
      ]);
      expect(a.tunnelled).toEqual([]);
      expect(garbage()).toEqual([]);
    });
  }

  it('a request sent after the refusal arrived is parsed and routed too', async () => {
    const client = new RawClient(tether.port);
    try {
      client.write(upgrade('/up-later', keyA));
      expect((await client.response())?.status).toBe(426);
      client.write(plain('/later', keyB));
      const res = await client.response();
      expect([res?.status, res?.headers['x-upstream'], res?.body]).toEqual([200, 'b', 'b GET /later 0\n']);
    } finally {
      client.destroy();
    }
    expect(garbage()).toEqual([]);
  });

  it('a CL+TE request after a refused Upgrade gets 400 and reaches no upstream', async () => {
    const before = logged().length;
    const { responses, closed } = await converse(
      `${upgrade('/up-clte', keyA)}POST /clte HTTP/1.1\r\nHost: t\r\nx-key: ${keyA}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled-clte HTTP/1.1\r\nHost: t\r\n\r\n`,
    );
    expect(responses.map((r) => r.status)).toEqual([426, 400]);
    expect(closed).toBe(true);
    expect(logged().slice(before).map((r) => r.target)).toEqual(['/up-clte']);
    expect(garbage()).toEqual([]);
  });

  it('a 101 makes a tunnel; bytes sent with the upgrade request reach the upstream only after its 101', async () => {
    upgradeAnswer = 101;
    const socket = net.connect({ host: '127.0.0.1', port: tether.port });
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.write(upgrade('/ws', keyB) + 'early frame bytes');
    try {
      await until(() => got.includes('early frame bytes'));
      expect(got).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*\r\n\r\nearly frame bytes$/);
      socket.write('GET /not-a-request HTTP/1.1\r\n\r\n');
      await until(() => got.endsWith('GET /not-a-request HTTP/1.1\r\n\r\n'));
    } finally {
      socket.destroy();
    }
    // Tunnel bytes are the new protocol's: the upstream got them raw, never as
    // requests, and none before it had said 101 (it waited 100 ms to say it).
    expect(b.tunnelled.at(-1)).toBe('early frame bytes' + 'GET /not-a-request HTTP/1.1\r\n\r\n');
    expect(b.early.at(-1)).toBe('');
    expect(logged().some((r) => r.target === '/not-a-request')).toBe(false);
  });

  it('an upgrade pipelined behind a plain request waits for its answer, then tunnels', async () => {
    upgradeAnswer = 101;
    const socket = net.connect({ host: '127.0.0.1', port: tether.port });
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.write(plain('/first', keyA) + upgrade('/ws-second', keyB) + 'ping');
    try {
      await until(() => got.endsWith('ping'));
      expect(got).toMatch(/^HTTP\/1\.1 200 [\s\S]*a GET \/first 0\nHTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*\r\n\r\nping$/);
    } finally {
      socket.destroy();
    }
  });

  it('CONNECT is answered 501 and reaches no upstream', async () => {
    const connections = a.connections() + b.connections();
    const before = logged().length;
    const { responses, closed } = await converse(`CONNECT ${a.address} HTTP/1.1\r\nHost: ${a.address}\r\nx-key: ${keyA}\r\n\r\nGET /smuggled-connect HTTP/1.1\r\nHost: t\r\n\r\n`);
    expect(responses.map((r) => r.status)).toEqual([501]);
    expect(closed).toBe(true);
    expect(logged().length).toBe(before);
    expect(a.connections() + b.connections()).toBe(connections);
  });

  it('an upgrade request with a body is refused with 400 before it is routed', async () => {
    const before = logged().length;
    const { responses, closed } = await converse(
      `GET /up-body HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 36\r\nx-key: ${keyA}\r\n\r\nGET /smuggled-body HTTP/1.1\r\nHost: t\r\n\r\n`,
    );
    expect(responses.map((r) => r.status)).toEqual([400]);
    expect(closed).toBe(true);
    expect(logged().length).toBe(before);
  });
});

describe('http mode: a routed request is answered, never refused after the fact', () => {
  for (const [name, head] of [
    ['Connection: close', `POST /cc HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 4\r\nx-key: KEY\r\n\r\nbody`],
    ['HTTP/1.0', `POST /http10 HTTP/1.0\r\nContent-Length: 4\r\nx-key: KEY\r\n\r\nbody`],
  ] as const) {
    it(`${name} POST followed by more bytes: the upstream's answer arrives, the rest is dropped, one request upstream`, async () => {
      const before = logged().length;
      const target = head.split(' ')[1]!;
      const { responses, closed } = await converse(head.replace('KEY', keyA) + plain('/after-close', keyB) + 'and some junk\r\n\r\n');
      expect(responses.map((r) => [r.status, r.body])).toEqual([[200, `a POST ${target} 4\n`]]);
      expect(closed).toBe(true);
      expect(logged().slice(before).map((r) => [r.upstream, r.target, r.bodyBytes])).toEqual([['a', target, 4]]);
    });
  }

  for (const [name, line] of [
    ['HTTP/2.0', 'GET /v2 HTTP/2.0\r\nHost: t\r\n\r\n'],
    ['no version (HTTP/0.9)', 'GET /v09\r\n\r\n'],
    ['HTTP/2.0 upgrade', 'GET /v2up HTTP/2.0\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
  ] as const) {
    it(`${name}: 400 and nothing forwarded`, async () => {
      const before = logged().length;
      const { responses, closed } = await converse(line + plain('/after-version', keyA));
      expect(responses.map((r) => r.status)).toEqual([400]);
      expect(closed).toBe(true);
      expect(logged().length).toBe(before);
    });
  }

  it('a bad request pipelined behind good ones: theirs first, then 400 and the close', async () => {
    const before = logged().length;
    const { responses, closed } = await converse(`${plain('/good-1', keyA)}${plain('/good-2', keyB)}GET /bad HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n`);
    expect(responses.map((r) => [r.status, r.headers['x-upstream'] ?? null])).toEqual([
      [200, 'a'],
      [200, 'b'],
      [400, null],
    ]);
    expect(closed).toBe(true);
    expect(logged().slice(before).map((r) => r.target)).toEqual(['/good-1', '/good-2']);
  });
});

/** One payload of the smuggling corpus: its class, and the bytes (target `/cN-first`). */
interface Payload {
  readonly kind: string;
  readonly bytes: string;
}

/** Seeded smuggling payloads: each class with random keys, sizes, spellings and bodies. */
function corpus(seed: number, count: number): Payload[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const key = (): string => pick([keyA, keyB]);
  const body = (n: number): string => 'x'.repeat(n);
  const caseOf = (s: string): string => [...s].map((c) => (random() < 0.5 ? c.toUpperCase() : c.toLowerCase())).join('');
  const chunk = (s: string): string => `${s.length.toString(16)}\r\n${s}\r\n0\r\n\r\n`;
  const classes: ((t: string) => string)[] = [
    // Well-formed: both requests forwarded.
    (t) => plain(t, key()),
    (t) => { const n = Math.floor(random() * 40); return `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\n${caseOf('content-length')}: ${n}\r\n\r\n${body(n)}`; },
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\n${caseOf('transfer-encoding')}: chunked\r\n\r\n${chunk(body(1 + Math.floor(random() * 30)))}`,
    // CL and TE together, either order.
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nContent-Length: ${Math.floor(random() * 50)}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nTransfer-Encoding: chunked\r\nContent-Length: ${Math.floor(random() * 50)}\r\n\r\n0\r\n\r\n`,
    // Conflicting or listed Content-Lengths.
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nContent-Length: 0\r\nContent-Length: ${1 + Math.floor(random() * 50)}\r\n\r\n`,
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nContent-Length: 3, 3\r\n\r\nabc`,
    // Obfuscated Transfer-Encoding.
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nTransfer-Encoding: ${pick(['xchunked', 'chunked , identity', 'chunked, gzip', 'identity', '"chunked"', 'chunked\x0b'])}\r\n\r\n0\r\n\r\n`,
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nTransfer-Encoding${pick([' ', '\t'])}: chunked\r\n\r\n0\r\n\r\n`,
    // obs-fold.
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nTransfer-Encoding:\r\n${pick([' ', '\t'])}chunked\r\n\r\n0\r\n\r\n`,
    (t) => `GET ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nX-Folded: a\r\n b\r\n\r\n`,
    // Bare line ends, NUL.
    (t) => `GET ${t} HTTP/1.1\nHost: t\nx-key: ${key()}\n\n`,
    (t) => `GET ${t} HTTP/1.1\r\nHost: t\rx-key: ${key()}\r\n\r\n`,
    (t) => `GET ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nX-Nul: a\x00b\r\n\r\n`,
    // Chunk-size tricks.
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nTransfer-Encoding: chunked\r\n\r\n${pick(['ffffffffffffffffff', '0x3', '-3', '3 3', 'zz', '3;a\n'])}\r\nabc\r\n0\r\n\r\n`,
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n`,
    // Versions no upstream should read.
    (t) => `GET ${t} HTTP/${pick(['2.0', '0.9', '1.2', '3.0'])}\r\nHost: t\r\nx-key: ${key()}\r\n\r\n`,
    (t) => `GET ${t}\r\n\r\n`,
    // Connection-ending requests followed by more bytes.
    (t) => `POST ${t} HTTP/1.1\r\nHost: t\r\nx-key: ${key()}\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok`,
    (t) => `POST ${t} HTTP/1.0\r\nx-key: ${key()}\r\nContent-Length: 2\r\n\r\nok`,
    // Upgrades the upstream refuses, with and without a body, and CONNECT.
    (t) => upgrade(t, key()),
    (t) => `GET ${t} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nx-key: ${key()}\r\nContent-Length: 4\r\n\r\nbody`,
    () => `CONNECT ${a.address} HTTP/1.1\r\nHost: ${a.address}\r\nx-key: ${key()}\r\n\r\n`,
  ];
  const payloads: Payload[] = [];
  for (let i = 0; i < count; i++) {
    const kind = Math.floor(random() * classes.length);
    payloads.push({ kind: `class ${kind}`, bytes: classes[kind]!(`/c${i}-first`) });
  }
  return payloads;
}

describe('http mode: a seeded corpus of smuggling payloads, each followed by a second request', () => {
  it('for every payload the upstreams logged exactly the requests whose answers the client got, in order, target and body length', async () => {
    upgradeAnswer = 426;
    const seed = 0x5a17;
    const payloads = corpus(seed, 240);
    const run = async (payload: Payload, i: number): Promise<void> => {
      const second = `GET /c${i}-second HTTP/1.1\r\nHost: t\r\nx-key: ${i % 2 === 0 ? keyA : keyB}\r\nConnection: close\r\n\r\n`;
      const { responses } = await converse(payload.bytes + second);
      // Every answer from an upstream names it and echoes the request it answered.
      const answered = responses.filter((r) => r.headers['x-upstream'] !== undefined).map((r) => {
        const [name, , target, bytes] = r.body.trim().split(' ');
        return `${name} ${target} ${bytes}`;
      });
      // Requests for two upstreams travel in parallel: put what they logged in the
      // order the client sent them, the order its answers must come in.
      const sent = (target: string): number => (target.endsWith('-first') ? 0 : 1);
      const seen = logged()
        .filter((r) => r.target.startsWith(`/c${i}-`))
        .sort((x, y) => sent(x.target) - sent(y.target))
        .map((r) => `${r.upstream} ${r.target} ${r.bodyBytes}`);
      expect(seen, `seed 0x${seed.toString(16)} payload ${i} (${payload.kind}): ${JSON.stringify(payload.bytes)}`).toEqual(answered);
      // tether's own answers are refusals (4xx, 501) or a failure to reach an upstream.
      for (const r of responses) if (r.headers['x-upstream'] === undefined) expect([400, 501]).toContain(r.status);
    };
    for (let i = 0; i < payloads.length; i += 8) await Promise.all(payloads.slice(i, i + 8).map((p, j) => run(p, i + j)));
    expect(garbage()).toEqual([]);
    expect(a.tunnelled).toEqual([]);
    // The corpus has teeth: some payloads pass whole, some are refused.
    const targets = new Set(logged().map((r) => r.target));
    expect([...targets].filter((t) => t.endsWith('-second')).length).toBeGreaterThan(20);
    expect(payloads.filter((_, i) => !targets.has(`/c${i}-first`)).length).toBeGreaterThan(60);
  }, 120_000);
});

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
