import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INSPECT_BYTES, readSni } from '../../../../src/proxy/tcp/inspect/index.js';
import { fuzzSeed, runFuzz, type CorpusEntry } from '../../../helpers/fuzz.js';
import { answer, checkChunking, everyEnd, someEnds } from '../../../helpers/inspect.js';
import { listenLoopback } from '../../../helpers/listen.js';
import { seededRandom } from '../../../helpers/random.js';

/** The bytes a real client (node's own TLS stack) writes first: its ClientHello records. */
async function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {});
    setTimeout(() => socket.destroy(), 150); // the client waits for a ServerHello that never comes
  });
  const port = await listenLoopback(server);
  await new Promise<void>((resolve) => {
    const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    client.on('error', () => resolve());
    client.on('close', () => resolve());
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return Buffer.concat(chunks);
}

/** The handshake bytes of `records` cut again into records of the sizes `size()` picks (as a big hello arrives). */
function refragment(records: Buffer, size: () => number): Buffer {
  const fragments: Buffer[] = [];
  for (let pos = 0; pos + 5 <= records.length; pos += 5 + records.readUInt16BE(pos + 3)) {
    fragments.push(records.subarray(pos + 5, pos + 5 + records.readUInt16BE(pos + 3)));
  }
  const handshake = Buffer.concat(fragments);
  const out: Buffer[] = [];
  for (let pos = 0; pos < handshake.length; ) {
    const n = Math.max(1, Math.min(16384, size(), handshake.length - pos));
    out.push(Buffer.from([0x16, 0x03, 0x01, n >> 8, n & 0xff]), handshake.subarray(pos, pos + n));
    pos += n;
  }
  return Buffer.concat(out);
}

/**
 * An independent, plain reading of the same grammar over the whole input (fragments
 * reassembled first): the server name if the input starts with a complete, valid
 * ClientHello that fits in `limit` bytes, else null.
 */
function referenceSni(input: Buffer, limit: number): string | null {
  const data = input.subarray(0, Math.min(input.length, limit));
  const fragments: Buffer[] = [];
  let have = 0;
  let need = Infinity;
  for (let pos = 0; have < need; ) {
    if (pos + 5 > data.length) return null;
    if (data[pos] !== 0x16 || data[pos + 1] !== 3 || data[pos + 2]! > 4) return null;
    const length = data.readUInt16BE(pos + 3);
    if (length === 0 || length > 16384) return null;
    const fragment = data.subarray(pos + 5, pos + 5 + length);
    fragments.push(fragment);
    have += fragment.length;
    pos += 5 + length;
    if (have >= 4) need = 4 + Buffer.concat(fragments).readUIntBE(1, 3);
    if (fragment.length < length) break;
  }
  const hs = Buffer.concat(fragments);
  if (hs.length < need || hs[0] !== 1) return null;
  const body = hs.subarray(4, need);
  if (body.length < 41 || body.length + 9 > limit || body[0] !== 3) return null;
  let at = 34;
  const take = (n: number): Buffer | null => {
    if (at + n > body.length) return null;
    at += n;
    return body.subarray(at - n, at);
  };
  const sid = body[at++]!;
  if (sid > 32 || take(sid) === null) return null;
  if (at + 2 > body.length) return null;
  const suites = body.readUInt16BE(at);
  at += 2;
  if (suites === 0 || suites % 2 === 1 || take(suites) === null) return null;
  if (at + 1 > body.length) return null;
  const comp = body[at++]!;
  if (comp === 0 || take(comp) === null) return null;
  if (at + 2 > body.length || body.readUInt16BE(at) !== body.length - at - 2) return null;
  at += 2;
  let name: string | null = null;
  let seen = false;
  while (at < body.length) {
    if (at + 4 > body.length) return null;
    const type = body.readUInt16BE(at);
    const ext = body.subarray(at + 4, at + 4 + body.readUInt16BE(at + 2));
    if (at + 4 + body.readUInt16BE(at + 2) > body.length) return null;
    at += 4 + ext.length;
    if (type !== 0) continue;
    if (seen) return null;
    seen = true;
    if (ext.length < 6 || ext.readUInt16BE(0) !== ext.length - 2 || ext[2] !== 0 || ext.readUInt16BE(3) !== ext.length - 5) return null;
    const text = ext.subarray(5).toString('latin1');
    if (text.length > 255 || !/^[A-Za-z0-9._-]+$/.test(text)) return null;
    name = text.toLowerCase();
  }
  return name;
}

const NAMES = ['example.com', 'API.Example.COM', 'a', 'xn--bcher-kva.example', 'svc_internal.cluster-1.local', `${'x'.repeat(63)}.${'y'.repeat(63)}.${'z'.repeat(63)}.${'w'.repeat(61)}`];
const ALPN_MANY = Array.from({ length: 200 }, (_, i) => `proto-${i}-${'p'.repeat(20)}`);
const ALPN_HUGE = Array.from({ length: 800 }, (_, i) => `proto-${i}-${'q'.repeat(20)}`); // over 16 KiB: two records

interface Captured {
  readonly name: string;
  readonly servername: string;
  readonly bytes: Buffer;
}
const captured: Captured[] = [];

beforeAll(async () => {
  for (const servername of NAMES) {
    captured.push({ name: `default ${servername}`, servername, bytes: await captureHello({ servername }) });
  }
  captured.push({ name: 'tls1.2 only', servername: 'tls12.example', bytes: await captureHello({ servername: 'tls12.example', maxVersion: 'TLSv1.2' }) });
  captured.push({ name: 'many alpn', servername: 'alpn.example', bytes: await captureHello({ servername: 'alpn.example', ALPNProtocols: ALPN_MANY }) });
  captured.push({
    name: 'many curves and sigalgs',
    servername: 'curves.example',
    bytes: await captureHello({ servername: 'curves.example', ecdhCurve: 'X25519:P-256:P-384:P-521:X448', sigalgs: 'ECDSA+SHA256:RSA-PSS+SHA256:RSA+SHA256:ECDSA+SHA384:RSA+SHA512' }),
  });
  captured.push({ name: 'huge alpn (two records)', servername: 'big.example', bytes: await captureHello({ servername: 'big.example', ALPNProtocols: ALPN_HUGE }) });
}, 30_000);

describe('readSni on ClientHellos node writes', () => {
  it('captured what node wrote', () => {
    for (const c of captured) expect(c.bytes[0], c.name).toBe(0x16);
    const huge = captured.find((c) => c.name.startsWith('huge'))!;
    expect(huge.bytes.length).toBeGreaterThan(16384 + 5);
  });

  it('gives the lower-cased servername, fed whole and split at every byte', () => {
    for (const c of captured) {
      const limit = c.bytes.length > DEFAULT_INSPECT_BYTES ? 65536 : DEFAULT_INSPECT_BYTES;
      const result = checkChunking(readSni, c.bytes, everyEnd(c.bytes), limit);
      expect(answer(result), c.name).toBe(answer({ kind: 'key', key: c.servername.toLowerCase() }));
    }
  });

  it('reads a hello split across many small records, the name itself cut by record headers', () => {
    const random = seededRandom(7);
    for (const c of captured.filter((x) => x.bytes.length < 4000)) {
      for (const maxSize of [1, 2, 7, 50, 300]) {
        const bytes = refragment(c.bytes, () => 1 + Math.floor(random() * maxSize));
        const result = checkChunking(readSni, bytes, everyEnd(bytes), 65536, 1);
        expect(answer(result), `${c.name} in records of 1..${maxSize}`).toBe(answer({ kind: 'key', key: c.servername.toLowerCase() }));
      }
    }
  });

  it('says none for a hello that cannot fit in the limit, at once', () => {
    const huge = captured.find((c) => c.name.startsWith('huge'))!;
    expect(readSni(huge.bytes, 16, DEFAULT_INSPECT_BYTES).kind).toBe('none');
    expect(readSni(huge.bytes, huge.bytes.length, 65536).kind).toBe('key');
  });

  it('says none for non-TLS bytes at the first byte, and for an SSLv2-style hello', () => {
    expect(readSni(Buffer.from('GET / HTTP/1.1\r\n'), 1).kind).toBe('none');
    expect(readSni(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02]), 5).kind).toBe('none');
    expect(readSni(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]), 7).kind).toBe('none'); // an alert
    expect(readSni(Buffer.alloc(0), 0).kind).toBe('more');
    expect(readSni(Buffer.from([0x16, 0x03]), 2).kind).toBe('more');
  });

  it('never throws on nonsense ends and limits', () => {
    const bytes = captured[0]!.bytes;
    for (const end of [-1, NaN, Infinity, 1e12, 3.5]) expect(() => readSni(bytes, end)).not.toThrow();
    for (const limit of [0, -5, NaN, 1]) expect(() => readSni(bytes, bytes.length, limit)).not.toThrow();
    expect(readSni(bytes, Infinity).kind).toBe('key');
  });
});

describe('readSni against a real TLS server (node/OpenSSL)', () => {
  let dir = '';
  let key = Buffer.alloc(0);
  let cert = Buffer.alloc(0);
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tether-sni-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=test', '-days', '1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    key = readFileSync(path.join(dir, 'key.pem'));
    cert = readFileSync(path.join(dir, 'cert.pem'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('agrees with the server on the name for 200 names (and refuses only names outside [A-Za-z0-9._-])', async () => {
    const seen: (string | undefined)[] = [];
    const context = tls.createSecureContext({ key, cert });
    // The name as OpenSSL parsed it out of the ClientHello (the SNICallback runs while the hello is read).
    const server = tls.createServer({ key, cert, SNICallback: (name, cb) => {
      seen.push(name);
      cb(null, context);
    } }, (socket) => socket.end());
    server.on('tlsClientError', () => {});
    const tlsPort = await listenLoopback(server);
    // A relay that records the client's bytes and passes them on untouched.
    const recorded: Buffer[][] = [];
    const relay = net.createServer((client) => {
      const chunks: Buffer[] = [];
      recorded.push(chunks);
      const upstream = net.connect(tlsPort, '127.0.0.1');
      client.on('data', (chunk) => chunks.push(chunk));
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    const relayPort = await listenLoopback(relay);

    const random = seededRandom(0x5e1);
    const label = (alphabet: string): string => Array.from({ length: 1 + Math.floor(random() * 20) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    const names = Array.from({ length: 200 }, (_, i) => {
      const odd = i % 10 === 9; // every tenth name holds a byte a DNS name does not
      const parts = Array.from({ length: 1 + Math.floor(random() * 4) }, () => label('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'));
      if (odd) parts.push(label('!$&*+~=') + 'x');
      return parts.join('.');
    });
    const refused: string[] = [];
    for (const name of names) {
      seen.length = 0;
      recorded.length = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no handshake for ${name} (seen ${String(seen[0])})`)), 5000);
        const client = tls.connect({ host: '127.0.0.1', port: relayPort, servername: name, rejectUnauthorized: false }, () => {
          clearTimeout(timer);
          client.destroy();
          resolve();
        });
        client.on('error', reject);
      });
      const bytes = Buffer.concat(recorded[0]!);
      const ours = readSni(bytes, bytes.length);
      const theirs = seen[0];
      expect(theirs, name).toBe(name); // the server got the name, so the bytes went through untouched
      if (ours.kind === 'key') expect(ours.key, name).toBe(theirs!.toLowerCase());
      else {
        expect(ours.kind, name).toBe('none');
        expect(/^[A-Za-z0-9._-]+$/.test(name), `refused a DNS-ish name: ${name}`).toBe(false);
        refused.push(name);
      }
    }
    expect(refused.length).toBe(20);
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }, 60_000);
});

describe('readSni fuzzing', () => {
  it('100,000 mutated hellos: no throw, no key a plain reading refuses, chunking never changes the answer, no read past end', () => {
    const random = seededRandom(11);
    const small = captured.filter((c) => c.bytes.length < 2000);
    const corpus: CorpusEntry[] = [
      ...small.map((c) => ({ name: c.name, bytes: c.bytes })),
      ...small.slice(0, 3).map((c) => ({ name: `${c.name} in records of 1..40`, bytes: refragment(c.bytes, () => 1 + Math.floor(random() * 40)) })),
      ...small.slice(0, 2).map((c) => ({ name: `${c.name} in records of 100..400`, bytes: refragment(c.bytes, () => 100 + Math.floor(random() * 300)) })),
    ];
    const dictionary = [
      Buffer.from([0x16, 0x03, 0x01]),
      Buffer.from([0x16, 0x03, 0x03, 0x00, 0x10]),
      Buffer.from([0x00, 0x00]), // server_name type
      Buffer.from([0x00, 0x00, 0x00, 0x0a, 0x00, 0x08, 0x00, 0x00, 0x05]),
      Buffer.from('EXAMPLE.com'),
      Buffer.from('bad name!'),
      Buffer.from([0xff, 0xff]),
      Buffer.from([0x01, 0x00, 0xff, 0xff]),
    ];
    const counts = { key: 0, none: 0, more: 0, referenceKeys: 0 };
    const report = runFuzz({
      seed: fuzzSeed(0x7151),
      cases: 100_000,
      // Node 26's own hellos (the corpus) carry an ML-KEM key share: 1,588 bytes against
      // Node 20's 369, so its cases take about twice as long (7 s here on Node 20).
      timeLimitMs: 100_000,
      corpus,
      dictionary,
      prefixes: [Buffer.from([0x16, 0x03, 0x01]), Buffer.from([0x16, 0x03, 0x03, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])],
      check: (c) => {
        const limit = c.random() < 0.2 ? 64 + Math.floor(c.random() * 2000) : DEFAULT_INSPECT_BYTES;
        const whole = checkChunking(readSni, c.input, someEnds(c.input.length, 6, c.random), limit, Math.floor(c.random() * 256));
        const expected = referenceSni(c.input, limit);
        if (expected !== null) counts.referenceKeys++;
        if (whole.kind === 'key' || expected !== null) {
          if (whole.kind !== 'key' || whole.key !== expected) throw new Error(`readSni says ${answer(whole)}, the plain reading ${JSON.stringify(expected)}`);
        }
        counts[whole.kind]++;
      },
    });
    console.log(`readSni fuzz: seed 0x${report.seed.toString(16)}, ${report.cases} cases in ${report.elapsedMs} ms; answers ${JSON.stringify(counts)}`);
    expect(counts.key).toBeGreaterThan(1000);
    expect(counts.none).toBeGreaterThan(1000);
  }, 150_000);
});
