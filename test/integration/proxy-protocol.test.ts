import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { IPv4ProxyAddress, IPv6ProxyAddress, V1ProxyProtocol, V2ProxyProtocol, Command, TransportProtocol, IPv4Address } from 'proxy-protocol-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyHeaderParser } from '../../src/proxy/proxy-protocol/parse.js';
import { PROXY_CORPUS, PROXY_DICTIONARY, PROXY_PREFIXES } from '../fixtures/proxy-headers.js';
import { closed, connectAndGreet, waitFor } from '../helpers/clients.js';
import { fuzzCase, fuzzSeed, writeParts } from '../helpers/fuzz.js';
import { adminCall, metricSum, spawnTether, spawnedAddresses, startTether, type RunningTether, type TetherProcess } from '../helpers/tether.js';
import { freePort, startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';
import { listenLoopback } from '../helpers/listen.js';

let tether: RunningTether | null = null;
let upstreams: TestUpstream[] = [];
let aware: ProxyAwareUpstream[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await tether?.close();
  tether = null;
  await Promise.all([...upstreams, ...aware].map((u) => u.close()));
  upstreams = [];
  aware = [];
});

interface SeenHeader {
  readonly version: 1 | 2;
  readonly source: string;
  readonly sourcePort: number;
  readonly dest: string;
  readonly destPort: number;
  /** Bytes after the header, as they arrive. */
  payload: Buffer;
}

interface ProxyAwareUpstream {
  readonly name: string;
  readonly address: string;
  readonly seen: SeenHeader[];
  close(): Promise<void>;
}

const ipv6Text = (bytes: number[]): string => {
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
};

/**
 * An upstream that expects a PROXY header (v1 or v2), reads it with proxy-protocol-js,
 * then greets with its name and echoes; what it saw is kept for the test.
 */
async function startProxyAwareUpstream(name: string): Promise<ProxyAwareUpstream> {
  const seen: SeenHeader[] = [];
  const open = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let header: SeenHeader | null = null;
    socket.on('data', (chunk: Buffer) => {
      if (header) {
        header.payload = Buffer.concat([header.payload, chunk]);
        socket.write(chunk);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      let length: number;
      if (buffered[0] === 0x50) {
        const crlf = buffered.indexOf('\r\n');
        if (crlf < 0) return;
        length = crlf + 2;
        const v1 = V1ProxyProtocol.parse(buffered.subarray(0, length).toString('latin1'));
        header = { version: 1, source: v1.source.ipAddress, sourcePort: v1.source.port, dest: v1.destination.ipAddress, destPort: v1.destination.port, payload: Buffer.alloc(0) };
      } else {
        if (buffered.length < 16) return;
        length = 16 + buffered.readUInt16BE(14);
        if (buffered.length < length) return;
        const v2 = V2ProxyProtocol.parse(new Uint8Array(buffered.subarray(0, length)));
        const a = v2.proxyAddress;
        if (a instanceof IPv4ProxyAddress) {
          header = { version: 2, source: a.sourceAddress.address.join('.'), sourcePort: a.sourcePort, dest: a.destinationAddress.address.join('.'), destPort: a.destinationPort, payload: Buffer.alloc(0) };
        } else if (a instanceof IPv6ProxyAddress) {
          header = { version: 2, source: ipv6Text(a.sourceAddress.address), sourcePort: a.sourcePort, dest: ipv6Text(a.destinationAddress.address), destPort: a.destinationPort, payload: Buffer.alloc(0) };
        } else {
          header = { version: 2, source: '', sourcePort: 0, dest: '', destPort: 0, payload: Buffer.alloc(0) };
        }
      }
      seen.push(header);
      const rest = buffered.subarray(length);
      header.payload = Buffer.from(rest);
      socket.write(`${name}\n`);
      if (rest.length > 0) socket.write(rest);
    });
  });
  const port = await listenLoopback(server);
  return {
    name,
    address: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Connect from `localAddress`, send `first` as one write, read the greeting line and `echoBytes` more. */
async function session(
  port: number,
  localAddress: string,
  first: Buffer | string,
  echoBytes = 0,
  more: (Buffer | string)[] = [],
): Promise<{ upstream: string | null; echo: Buffer; socket: net.Socket }> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress, noDelay: true });
  sockets.push(socket);
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(first);
  for (const m of more) socket.write(m);
  let data = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from ${localAddress}`)), 10_000);
    const finish = (upstream: string | null, echo: Buffer): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      resolve({ upstream, echo, socket });
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const nl = data.indexOf(10);
      if (nl >= 0 && data.length - nl - 1 >= echoBytes) finish(data.subarray(0, nl).toString('latin1'), data.subarray(nl + 1));
    });
    socket.on('close', () => finish(null, data));
  });
}

const v1Header = (source: string, sourcePort = 5555, destPort = 7000): string =>
  source.includes(':')
    ? `PROXY TCP6 ${source} ::1 ${sourcePort} ${destPort}\r\n`
    : `PROXY TCP4 ${source} 127.0.0.1 ${sourcePort} ${destPort}\r\n`;

async function routeOf(key: string): Promise<string> {
  const { body } = await adminCall(tether!.admin, 'GET', `/route?key=${encodeURIComponent(key)}`);
  return (body as { upstream: string }).upstream;
}

function outcomes(): Record<string, number> {
  return tether!.tether.runtime()!.listener.counters.outcomes;
}

describe('PROXY protocol: sending (TETHER_PROXY_PROTOCOL)', () => {
  for (const version of ['v1', 'v2'] as const) {
    it(`${version}: the upstream reads the client's address and port, then the payload intact`, async () => {
      const up = await startProxyAwareUpstream('pp');
      aware.push(up);
      tether = await startTether({ TETHER_UPSTREAMS: `pp=${up.address}`, TETHER_HEALTH: 'off', TETHER_PROXY_PROTOCOL: version });
      const payload = randomBytes(200_000);
      const { upstream, echo, socket } = await session(tether.port, '127.0.0.9', payload, payload.length);
      expect(upstream).toBe('pp');
      expect(echo.equals(payload)).toBe(true);
      expect(up.seen).toHaveLength(1);
      expect(up.seen[0]).toMatchObject({
        version: version === 'v1' ? 1 : 2,
        source: '127.0.0.9',
        sourcePort: socket.localPort,
        dest: '127.0.0.1',
        destPort: tether.port,
      });
      expect(up.seen[0]!.payload.equals(payload)).toBe(true);
    });
  }
});

describe('PROXY protocol: accepting (TETHER_ACCEPT_PROXY)', () => {
  const fakes = [
    ...Array.from({ length: 24 }, (_, i) => `203.0.113.${i + 1}`),
    ...Array.from({ length: 12 }, (_, i) => `198.51.100.${i * 7 + 3}`),
    '2001:db8::7',
    '2001:db8:1::42',
  ];

  it('routes by the address in the header, which /route agrees with; logs it as the client', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c', 'd', 'e']);
    const logs: Record<string, unknown>[] = [];
    tether = await startTether(
      {
        TETHER_UPSTREAMS: upstreamList(upstreams),
        TETHER_HEALTH: 'off',
        TETHER_ACCEPT_PROXY: 'v1',
        TETHER_TRUSTED_PROXIES: '127.0.0.1/32',
      },
      logs,
    );
    const reached = new Set<string>();
    for (const fake of fakes) {
      const { upstream, socket } = await session(tether.port, '127.0.0.1', v1Header(fake));
      expect(upstream, fake).toBe(await routeOf(fake));
      reached.add(upstream!);
      socket.destroy();
    }
    // Every connection came from 127.0.0.1: one upstream, were the header ignored.
    expect(reached.size).toBeGreaterThanOrEqual(3);
    // An IPv6 address in long form is the same key as its compressed form.
    const long = await session(tether.port, '127.0.0.1', 'PROXY TCP6 2001:DB8:0:0:0:0:0:7 ::1 4444 7000\r\n');
    expect(long.upstream).toBe(await routeOf('2001:db8::7'));
    long.socket.destroy();

    const probe = await session(tether.port, '127.0.0.1', v1Header('203.0.113.7'));
    probe.socket.destroy();
    await waitFor(() => logs.some((l) => l.client === '203.0.113.7:5555' && l.outcome === 'ok'), 5_000, 'access log line');
    await waitFor(() => logs.some((l) => l.client === '[2001:db8::7]:4444' || l.client === '2001:db8::7:4444'), 5_000, 'IPv6 access log line');
  });

  it('passes the header address on upstream in its own PROXY header (v1 in, v2 out)', async () => {
    const up = await startProxyAwareUpstream('pp');
    aware.push(up);
    tether = await startTether({
      TETHER_UPSTREAMS: `pp=${up.address}`,
      TETHER_HEALTH: 'off',
      TETHER_ACCEPT_PROXY: 'v1',
      TETHER_TRUSTED_PROXIES: '127.0.0.1/32',
      TETHER_PROXY_PROTOCOL: 'v2',
    });
    const { upstream, echo } = await session(tether.port, '127.0.0.1', `${v1Header('203.0.113.7')}hello`, 5);
    expect(upstream).toBe('pp');
    expect(echo.toString()).toBe('hello');
    expect(up.seen).toEqual([{ version: 2, source: '203.0.113.7', sourcePort: 5555, dest: '127.0.0.1', destPort: 7000, payload: Buffer.from('hello') }]);
  });

  it('any: takes a v2 header (from proxy-protocol-js) and a v1 one; LOCAL keeps the socket address', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c', 'd']);
    tether = await startTether({
      TETHER_UPSTREAMS: upstreamList(upstreams),
      TETHER_HEALTH: 'off',
      TETHER_ACCEPT_PROXY: 'any',
      TETHER_TRUSTED_PROXIES: '127.0.0.0/8',
    });
    for (const fake of fakes.slice(0, 12)) {
      const [a, b, c, d] = fake.split('.').map(Number) as [number, number, number, number];
      const header = new V2ProxyProtocol(
        Command.PROXY,
        TransportProtocol.STREAM,
        new IPv4ProxyAddress(IPv4Address.createFrom([a, b, c, d]), 5555, IPv4Address.createFrom([127, 0, 0, 1]), 7000),
      ).build();
      const v2 = await session(tether.port, '127.0.0.3', Buffer.from(header));
      expect(v2.upstream, fake).toBe(await routeOf(fake));
      const v1 = await session(tether.port, '127.0.0.4', v1Header(fake));
      expect(v1.upstream, fake).toBe(v2.upstream);
    }
    const local = Buffer.from(new V2ProxyProtocol(Command.LOCAL, TransportProtocol.UNSPEC, new IPv4ProxyAddress(IPv4Address.createFrom([0, 0, 0, 0]), 0, IPv4Address.createFrom([0, 0, 0, 0]), 0)).build());
    // LOCAL with UNSPEC family and an address block: the length says 12, the family says skip it.
    const { upstream } = await session(tether.port, '127.0.0.5', local);
    expect(upstream).toBe(await routeOf('127.0.0.5'));
    const unknown = await session(tether.port, '127.0.0.6', 'PROXY UNKNOWN\r\n');
    expect(unknown.upstream).toBe(await routeOf('127.0.0.6'));
  });

  it('refuses a sender outside TETHER_TRUSTED_PROXIES at once, without an upstream connection', async () => {
    upstreams = await startUpstreams(['a', 'b']);
    const logs: Record<string, unknown>[] = [];
    tether = await startTether(
      {
        TETHER_UPSTREAMS: upstreamList(upstreams),
        TETHER_HEALTH: 'off',
        TETHER_ACCEPT_PROXY: 'v1',
        TETHER_TRUSTED_PROXIES: '127.0.0.1/32',
      },
      logs,
    );
    const started = Date.now();
    const refused = await session(tether.port, '127.0.0.9', v1Header('203.0.113.7'));
    expect(refused.upstream).toBeNull();
    expect(Date.now() - started).toBeLessThan(1_000);
    const silent = await connectAndGreet(tether.port, '127.0.0.9');
    expect(silent.upstream).toBeNull();
    expect(upstreams.reduce((n, u) => n + u.accepted, 0)).toBe(0);
    await waitFor(() => outcomes().refused === 2, 5_000, 'two refusals counted');
    const line = logs.find((l) => l.outcome === 'refused');
    expect(line).toMatchObject({ reason: 'untrusted PROXY sender', upstream: null });
    expect(String(line!.client)).toMatch(/^127\.0\.0\.9:\d+$/);
    // The trusted one is still served.
    const ok = await session(tether.port, '127.0.0.1', v1Header('203.0.113.7'));
    expect(ok.upstream).toBe(await routeOf('203.0.113.7'));
  });
});

describe('PROXY protocol: bad and slow headers, and the bytes behind a header', () => {
  const acceptEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
    TETHER_UPSTREAMS: upstreamList(upstreams),
    TETHER_HEALTH: 'off',
    TETHER_ACCEPT_PROXY: 'any',
    TETHER_TRUSTED_PROXIES: '127.0.0.1/32',
    ...extra,
  });

  it('closes a truncated header at TETHER_HEAD_TIMEOUT_MS, even one trickled in byte by byte', async () => {
    upstreams = await startUpstreams(['a', 'b']);
    tether = await startTether(acceptEnv({ TETHER_HEAD_TIMEOUT_MS: '400' }));
    const cases: Buffer[] = [Buffer.from('PROXY TCP4 203.0.'), Buffer.from('0d0a0d0a000d0a515549540a2111000c', 'hex')];
    for (const truncated of cases) {
      const socket = net.connect({ host: '127.0.0.1', port: tether.port });
      sockets.push(socket);
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const started = Date.now();
      socket.write(truncated);
      await closed(socket);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(350);
      expect(elapsed).toBeLessThan(3_000);
    }
    // A slow sender that keeps the socket busy is held to the same total.
    const slow = net.connect({ host: '127.0.0.1', port: tether.port });
    sockets.push(slow);
    slow.on('error', () => {});
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    const started = Date.now();
    const line = v1Header('203.0.113.7');
    let i = 0;
    const timer = setInterval(() => i < line.length - 1 && !slow.destroyed && slow.write(line[i++]!), 50);
    await closed(slow);
    clearInterval(timer);
    expect(Date.now() - started).toBeLessThan(1_500);
    await waitFor(() => outcomes().timeout === 3, 5_000, 'three timeouts counted');
    expect(upstreams.reduce((n, u) => n + u.accepted, 0)).toBe(0);
    const ok = await session(tether.port, '127.0.0.1', v1Header('203.0.113.7'));
    expect(ok.upstream).toBe(await routeOf('203.0.113.7'));
  });

  it('closes garbage at once and keeps serving', async () => {
    upstreams = await startUpstreams(['a', 'b']);
    tether = await startTether(acceptEnv({ TETHER_HEAD_TIMEOUT_MS: '10000' }));
    const garbage = [
      'GET / HTTP/1.1\r\nHost: example\r\n\r\n',
      'PROXY TCP4 203.0.113.7 127.0.0.1 99999 7000\r\n',
      'PROXY TCP4 203.0.113.777 127.0.0.1 5555 7000\r\n',
      `PROXY UNKNOWN ${'x'.repeat(200)}\r\n`,
      Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a2111ffff', 'hex'), Buffer.alloc(64)]),
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01]),
    ];
    for (const g of garbage) {
      const started = Date.now();
      const { upstream } = await session(tether.port, '127.0.0.1', g);
      expect(upstream, String(g)).toBeNull();
      expect(Date.now() - started, String(g)).toBeLessThan(1_000);
    }
    await waitFor(() => outcomes().bad_request === garbage.length, 5_000, 'bad requests counted');
    expect(upstreams.reduce((n, u) => n + u.accepted, 0)).toBe(0);
    for (const fake of ['203.0.113.7', '203.0.113.8', '2001:db8::9']) {
      const { upstream, echo } = await session(tether.port, '127.0.0.1', `${v1Header(fake)}ping`, 4);
      expect(upstream).toBe(await routeOf(fake));
      expect(echo.toString()).toBe('ping');
    }
  });

  it('delivers bytes that share the header packet first, then the rest, in order', async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    tether = await startTether(acceptEnv());
    // Small: header and payload in one segment, then more writes straight behind.
    const small = await session(tether.port, '127.0.0.1', `${v1Header('203.0.113.7')}first|`, 'first|second|third'.length, ['second|', 'third']);
    expect(small.echo.toString()).toBe('first|second|third');
    // Large: the first chunk holds the header and the start of 1 MiB; v2 this time.
    const payload = randomBytes(1 << 20);
    const header = Buffer.from('0d0a0d0a000d0a515549540a2111000ccb007107' + '7f000001' + '15b31b58', 'hex');
    const large = await session(tether.port, '127.0.0.1', Buffer.concat([header, payload]), payload.length);
    expect(large.upstream).toBe(await routeOf('203.0.113.7'));
    expect(large.echo.length).toBe(payload.length);
    expect(large.echo.equals(payload)).toBe(true);
  });

  it('passes on a FIN that came right behind the header and its data, after the data', async () => {
    // The upstream answers only once it has seen the client's FIN.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      let received = '';
      socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
      socket.on('end', () => socket.end(`got ${received}`));
    });
    const port = await listenLoopback(server);
    aware.push({ name: 'fin', address: '', seen: [], close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    tether = await startTether({ ...acceptEnv(), TETHER_UPSTREAMS: `fin=127.0.0.1:${port}` });
    const client = net.connect({ host: '127.0.0.1', port: tether.port, allowHalfOpen: true });
    sockets.push(client);
    let answer = '';
    client.on('data', (c: Buffer) => (answer += c.toString()));
    client.end(`${v1Header('203.0.113.7')}abc`);
    await new Promise<void>((resolve) => client.on('end', () => resolve()));
    expect(answer).toBe('got abc');
    await waitFor(() => tether!.tether.runtime()!.listener.counters.fromClient === 3, 5_000, 'bytes counted');
  });

  it('keeps the bytes behind the header across a failed connect to the first upstream', async () => {
    upstreams = await startUpstreams(['live1', 'live2']);
    const deadPort = await freePort();
    tether = await startTether({
      ...acceptEnv(),
      TETHER_UPSTREAMS: `${upstreamList(upstreams)},dead=127.0.0.1:${deadPort}`,
      TETHER_RETRIES: '2',
    });
    // A key whose first choice is the dead upstream (health is off: it counts as up).
    let victim: string | null = null;
    for (let i = 1; i < 255 && victim === null; i++) {
      if ((await routeOf(`198.51.100.${i}`)) === 'dead') victim = `198.51.100.${i}`;
    }
    expect(victim).not.toBeNull();
    const payload = randomBytes(100_000);
    const { upstream, echo } = await session(tether.port, '127.0.0.1', Buffer.concat([Buffer.from(v1Header(victim!)), payload.subarray(0, 1000)]), payload.length, [
      payload.subarray(1000),
    ]);
    expect(['live1', 'live2']).toContain(upstream);
    expect(echo.equals(payload)).toBe(true);
  });
});

describe('PROXY protocol: fuzz through real sockets', () => {
  const CASES = 2_000;
  let proc: TetherProcess | null = null;
  afterEach(() => {
    proc?.kill('SIGKILL');
    proc = null;
  });

  /** Send `input` in 1-3 writes (and maybe a FIN); the upstream's greeting, or null when closed without one. */
  function throwAt(port: number, input: Buffer, random: () => number): Promise<{ upstream: string | null; fin: boolean }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
      const fin = random() < 0.3;
      const cuts = [Math.floor(random() * (input.length + 1)), Math.floor(random() * (input.length + 1))].sort((a, b) => a - b);
      const parts = [input.subarray(0, cuts[0]), input.subarray(cuts[0], cuts[1]), input.subarray(cuts[1])].filter((p) => p.length > 0);
      let data = '';
      let settled = false;
      const timer = setTimeout(() => finish(new Error('neither answered nor closed within 10 s')), 10_000);
      const finish = (err: Error | null, upstream: string | null = null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve({ upstream, fin });
      };
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        data += chunk.toString('latin1');
        const nl = data.indexOf('\n');
        if (nl >= 0) finish(null, data.slice(0, nl));
      });
      socket.on('close', () => finish(null, null));
      socket.once('connect', () => writeParts(socket, parts, fin));
    });
  }

  it(`${CASES.toLocaleString('en-US')} mutated and random headers through a running tether: each routed or closed as the parser says, no crash, normal clients served after`, async () => {
    upstreams = await startUpstreams(['a', 'b', 'c']);
    proc = spawnTether({
      TETHER_UPSTREAMS: upstreamList(upstreams),
      TETHER_LISTEN: '127.0.0.1:0',
      TETHER_ADMIN: '127.0.0.1:0',
      TETHER_HEALTH: 'off',
      TETHER_ACCEPT_PROXY: 'any',
      TETHER_TRUSTED_PROXIES: '127.0.0.1/32',
      TETHER_HEAD_TIMEOUT_MS: '500',
    });
    const { port, admin } = await spawnedAddresses(proc);
    const options = { seed: fuzzSeed(0x50c4e7), corpus: PROXY_CORPUS, dictionary: PROXY_DICTIONARY, prefixes: PROXY_PREFIXES };
    const expected = { done: 0, error: 0, more: 0 };
    let next = 0;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (next < CASES) {
        const c = fuzzCase(options, next++);
        const verdict = new ProxyHeaderParser('any').push(c.input).kind;
        expected[verdict]++;
        const where = `seed 0x${options.seed.toString(16)} case ${c.index} (${c.recipe}); input ${c.input.toString('hex')}`;
        try {
          const { upstream, fin } = await throwAt(port, c.input, c.random);
          const routed = upstream !== null && upstreams.some((u) => u.name === upstream);
          if (routed !== (verdict === 'done')) {
            failures.push(`${where}, fin ${fin}: parser says ${verdict}, tether ${upstream === null ? 'closed it' : `answered ${JSON.stringify(upstream)}`}`);
          }
        } catch (err) {
          failures.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    expect(failures.slice(0, 5)).toEqual([]);

    // Still the same process, and every connection ended and counted.
    expect(proc.child.exitCode).toBeNull();
    const metric = (name: string): Promise<number> => metricSum(admin, name);
    await waitFor(async () => (await metric('tether_connections_total')) === CASES, 10_000, 'every fuzz connection to be counted');
    expect(await metric('tether_connections_active')).toBe(0);
    // Normal clients are served, and routed by their headers.
    for (const fake of ['203.0.113.7', '198.51.100.20', '2001:db8::9']) {
      const { upstream, echo, socket } = await session(port, '127.0.0.1', `${v1Header(fake)}ping`, 4);
      socket.destroy();
      expect(upstream).toBe(((await adminCall(admin, 'GET', `/route?key=${encodeURIComponent(fake)}`)).body as { upstream: string }).upstream);
      expect(echo.toString()).toBe('ping');
    }
    expect(proc.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(proc.stderr).toBe('');
    // The mix reached every verdict.
    expect(expected.done).toBeGreaterThan(CASES / 20);
    expect(expected.error).toBeGreaterThan(CASES / 4);
    expect(expected.more).toBeGreaterThan(CASES / 40);
    console.log(`PROXY socket fuzz: seed 0x${options.seed.toString(16)}, ${CASES} cases: ${expected.done} routed, ${expected.error} malformed, ${expected.more} incomplete`);
  }, 120_000);
});
