import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzSeed, runFuzzAsync } from '../../../helpers/fuzz.js';
import { generatePipeline, generateRequest } from '../../../helpers/h1-generate.js';
import { listenLoopback } from '../../../helpers/listen.js';
import { llhttpParse } from '../../../helpers/llhttp-oracle.js';
import { seededRandom } from '../../../helpers/random.js';

/**
 * The differential fuzz drives llhttp directly; this shows that oracle says what a
 * real node:http server on 127.0.0.1 says: for generated requests sent over TCP, the
 * server sees the same heads, and refuses (clientError) exactly where the direct
 * parser reports an error.
 */

const MAX_HEAD = 64 * 1024;
const CASES = 1000;

interface Seen {
  heads: string[];
  error: string | null;
}

let server: http.Server;
let port = 0;
const byPort = new Map<number, Seen>();
const seenOf = (socket: net.Socket): Seen => {
  const key = socket.remotePort!;
  let seen = byPort.get(key);
  if (seen === undefined) byPort.set(key, (seen = { heads: [], error: null }));
  return seen;
};
const describeHead = (req: http.IncomingMessage): string => JSON.stringify([req.method, req.url, req.httpVersion, req.rawHeaders]);

beforeAll(async () => {
  // requireHostHeader: off, or node:http answers a Host-less HTTP/1.1 request 400 before emitting it (a server policy, not the parser's).
  server = http.createServer({ maxHeaderSize: MAX_HEAD, insecureHTTPParser: false, requestTimeout: 0, requireHostHeader: false });
  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    seenOf(req.socket).heads.push(describeHead(req));
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  };
  server.on('request', answer);
  // Without this node:http answers an unknown Expect with 417 and never emits the request.
  server.on('checkExpectation', answer);
  const tunnel = (req: http.IncomingMessage, socket: net.Socket): void => {
    seenOf(socket).heads.push(describeHead(req));
    socket.destroy();
  };
  server.on('upgrade', tunnel);
  server.on('connect', tunnel);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    seenOf(socket).error = err.code ?? 'unknown';
    socket.destroy();
  });
  port = await listenLoopback(server);
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function send(input: Buffer): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let local = 0;
    socket.on('connect', () => {
      local = socket.localPort!;
      socket.end(input);
    });
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      // Give the server's handlers a turn to record what they saw.
      setImmediate(() => {
        const seen = byPort.get(local) ?? { heads: [], error: null };
        byPort.delete(local);
        if (local === 0) reject(new Error('no connection'));
        else resolve(seen);
      });
    });
  });
}

describe('llhttp driven directly agrees with a node:http server', () => {
  it(`${CASES} generated requests over TCP`, async () => {
    const seed = fuzzSeed(0x5eed_0003);
    let errors = 0;
    await runFuzzAsync({
      seed,
      cases: CASES,
      concurrency: 8,
      timeLimitMs: 60_000,
      corpus: [],
      check: async (c) => {
        const random = seededRandom((seed ^ Math.imul(c.index + 1, 0x2545f491)) >>> 0);
        let input = Buffer.from(generatePipeline(random, generateRequest), 'latin1');
        // Every other case gets one corruption: a byte changed at random.
        if (c.index % 2 === 1) {
          input = Buffer.from(input);
          input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
        }
        const direct = llhttpParse('request', input, { maxHeaderSize: MAX_HEAD });
        const seen = await send(input);
        // node:http stops after a request that closes the connection; the direct parser reads on (and refuses what follows).
        const directHeads = direct.messages.map((m) => JSON.stringify([m.method, m.url, `${m.versionMajor}.${m.versionMinor}`, m.rawHeaders]));
        expect(seen.heads, `${JSON.stringify(input.toString("latin1"))} node:http ${JSON.stringify(seen.heads)} direct ${JSON.stringify(directHeads)}`).toEqual(directHeads.slice(0, seen.heads.length));
        const directError = direct.error === 'HPE_CLOSED_CONNECTION' ? null : direct.error;
        if (directError !== null) {
          errors++;
          expect(seen.error).toBe(directError);
          // The refused message itself may or may not have reached 'request' (its head can be complete when its framing is refused).
          expect([direct.errorMessage, directHeads.length]).toContain(seen.heads.length);
        } else if (seen.error !== null) {
          // At end of input node:http also reports a message it was inside of, or bytes after a close.
          expect(['HPE_INVALID_EOF_STATE', 'HPE_CLOSED_CONNECTION']).toContain(seen.error);
        }
      },
    });
    expect(errors).toBeGreaterThan(CASES / 10);
  }, 90_000);
});
