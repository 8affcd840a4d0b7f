/**
 * Keys from a connection's first bytes (tcp mode): real TLS servers and clients
 * (the handshake passes through tether untouched), real MQTT brokers (aedes) and
 * clients (mqtt), a server-first protocol, and a PROXY header in front.
 */
import net from 'node:net';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectAndGreet, waitFor } from '../helpers/clients.js';
import { Cleanups } from '../helpers/http.js';
import { listenLoopback } from '../helpers/listen.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';
import { captureClientHello, makeCert, startTlsUpstream, tlsExchange, type TestCert, type TlsUpstream } from '../helpers/tls.js';
import { startUpstreams, upstreamList, type TestUpstream } from '../helpers/upstreams.js';
import { seededRandom } from '../helpers/random.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.runAll());

/** Closed after the test, last started first. */
function keep<T extends { close(): Promise<void> }>(thing: T): T {
  cleanups.register(() => thing.close());
  return thing;
}

async function routeOf(t: RunningTether, key: string): Promise<{ upstream: string; via: string }> {
  const { status, body } = await adminCall(t.admin, 'GET', `/route?key=${encodeURIComponent(key)}`);
  expect(status).toBe(200);
  return body as { upstream: string; via: string };
}

const NAMES = Array.from({ length: 26 }, (_, i) => `${String.fromCharCode(97 + i)}.example`);

describe('sni', () => {
  let cert: TestCert;
  beforeAll(() => {
    cert = makeCert();
  });

  it('each server name always reaches one upstream, all three are used, the handshake and data pass intact, /route agrees', async () => {
    const upstreams: TlsUpstream[] = [];
    for (const name of ['t1', 't2', 't3']) upstreams.push(keep(await startTlsUpstream(name, cert)));
    const logs: Record<string, unknown>[] = [];
    const t = keep(
      await startTether(
        { TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','), TETHER_KEY: 'sni,source-ip', TETHER_HEALTH: 'off' },
        logs,
      ),
    );
    const random = seededRandom(19);
    const payload = Buffer.from(Array.from({ length: 100_000 }, () => Math.floor(random() * 256)));
    const seen = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        NAMES.map(async (servername) => {
          // Every client from one address: only the server name tells them apart.
          const { greeting, echoed } = await tlsExchange(t.port, servername, '127.0.0.7', cert, payload);
          const [upstream, heard] = greeting.split(' ');
          expect(heard, 'the upstream saw the ClientHello as sent').toBe(servername);
          expect(echoed.equals(payload), `${servername}: data intact`).toBe(true);
          const set = seen.get(servername) ?? new Set<string>();
          set.add(upstream!);
          seen.set(servername, set);
        }),
      );
    }
    const used = new Set<string>();
    for (const servername of NAMES) {
      const upstreamsOfName = [...seen.get(servername)!];
      expect(upstreamsOfName, servername).toHaveLength(1);
      used.add(upstreamsOfName[0]!);
      expect(await routeOf(t, servername), servername).toMatchObject({ upstream: upstreamsOfName[0], via: 'hash' });
    }
    expect([...used].sort()).toEqual(['t1', 't2', 't3']);
    // The access log names the source and hashes the key; no server name appears in any line.
    await waitFor(() => logs.filter((l) => l.component === 'access').length >= NAMES.length * 3, 5_000, 'access lines');
    const access = logs.filter((l) => l.component === 'access');
    expect(new Set(access.map((l) => l.keySource))).toEqual(new Set(['sni']));
    const text = JSON.stringify(logs);
    for (const servername of NAMES) expect(text.includes(servername), servername).toBe(false);
  });

  it('a server-first protocol with TETHER_KEY=sni,source-ip is routed by address once the wait is over, and works', async () => {
    // These upstreams greet first: the client sends nothing until it has heard them.
    const upstreams: TestUpstream[] = await startUpstreams(['g1', 'g2', 'g3']);
    for (const u of upstreams) keep(u);
    const logs: Record<string, unknown>[] = [];
    const t = keep(
      await startTether(
        { TETHER_UPSTREAMS: upstreamList(upstreams), TETHER_KEY: 'sni,source-ip', TETHER_INSPECT_TIMEOUT_MS: '200', TETHER_HEALTH: 'off' },
        logs,
      ),
    );
    for (const address of ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14']) {
      const { upstream, socket } = await connectAndGreet(t.port, address);
      expect(upstream).toBe((await routeOf(t, address)).upstream);
      // Then it talks: the echo comes back through.
      const echoed = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())));
      socket.write('ping\n');
      expect(await echoed).toBe('ping\n');
      socket.destroy();
    }
    await waitFor(() => logs.filter((l) => l.component === 'access').length >= 4, 5_000, 'access lines');
    expect(new Set(logs.filter((l) => l.component === 'access').map((l) => l.keySource))).toEqual(new Set(['source-ip']));
  });
});

describe('rdp-cookie and prefix:REGEX', () => {
  /** An X.224 connection request with an mstshash cookie and a negotiation request (what mstsc sends). */
  function rdpConnectionRequest(user: string): Buffer {
    const cookie = Buffer.from(`Cookie: mstshash=${user}\r\n`, 'latin1');
    const negotiation = Buffer.from([0x01, 0x00, 0x08, 0x00, 0x0b, 0x00, 0x00, 0x00]);
    const length = 11 + cookie.length + negotiation.length;
    return Buffer.concat([Buffer.from([0x03, 0x00, length >> 8, length & 0xff, length - 5, 0xe0, 0, 0, 0, 0, 0]), cookie, negotiation]);
  }

  for (const [chain, source, firstBytes] of [
    ['rdp-cookie,source-ip', 'rdp-cookie', rdpConnectionRequest],
    ['prefix:^HELLO user=(\\w+);,source-ip', 'prefix', (user: string) => Buffer.from(`HELLO user=${user};\n`)],
  ] as const) {
    it(`${source}: each user from one address always reaches one upstream, /route agrees, the bytes arrive unchanged`, async () => {
      const upstreams: RecordingUpstream[] = [];
      for (const name of ['k1', 'k2', 'k3']) upstreams.push(keep(await startRecordingUpstream(name)));
      const logs: Record<string, unknown>[] = [];
      const t = keep(
        await startTether({ TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','), TETHER_KEY: chain, TETHER_HEALTH: 'off' }, logs),
      );
      const users = Array.from({ length: 12 }, (_, i) => `user${i}`);
      const used = new Set<string>();
      for (let round = 0; round < 2; round++) {
        for (const user of users) {
          const socket = net.connect({ host: '127.0.0.1', port: t.port, localAddress: '127.0.0.21' });
          socket.on('error', () => {});
          socket.write(firstBytes(user));
          const greeting = await new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
          expect(greeting, user).toBe((await routeOf(t, user)).upstream);
          used.add(greeting);
          const upstream = upstreams.find((u) => u.name === greeting)!;
          await waitFor(() => upstream.received.some((r) => r.equals(firstBytes(user))), 5_000, `${user}: the first bytes at ${greeting}`);
          socket.destroy();
        }
      }
      expect(used.size).toBeGreaterThan(1);
      await waitFor(() => logs.filter((l) => l.component === 'access').length >= users.length * 2, 5_000, 'access lines');
      expect(new Set(logs.filter((l) => l.component === 'access').map((l) => l.keySource))).toEqual(new Set([source]));
    });
  }
});

/** An upstream that records every byte of every connection, and greets with its name. */
interface RecordingUpstream {
  readonly name: string;
  readonly address: string;
  readonly received: Buffer[];
  close(): Promise<void>;
}

async function startRecordingUpstream(name: string): Promise<RecordingUpstream> {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const index = received.push(Buffer.alloc(0)) - 1;
    socket.on('data', (chunk: Buffer) => {
      received[index] = Buffer.concat([received[index]!, chunk]);
    });
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(`${name}\n`);
  });
  const port = await listenLoopback(server);
  return {
    name,
    address: `127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('PROXY protocol in front of inspection', () => {
  it('reads the SNI after an inbound PROXY header, in one write or in pieces; upstreams get their own header, then the ClientHello unchanged', async () => {
    const upstreams: RecordingUpstream[] = [];
    for (const name of ['r1', 'r2', 'r3']) upstreams.push(keep(await startRecordingUpstream(name)));
    const logs: Record<string, unknown>[] = [];
    const t = keep(
      await startTether({
        TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','),
        TETHER_KEY: 'sni,source-ip',
        TETHER_ACCEPT_PROXY: 'v1',
        TETHER_TRUSTED_PROXIES: '127.0.0.0/8',
        TETHER_PROXY_PROTOCOL: 'v1',
        TETHER_HEALTH: 'off',
        // Long enough that a key read by address after a stalled read shows in the log.
        TETHER_INSPECT_TIMEOUT_MS: '5000',
      }, logs),
    );
    for (const [i, servername] of ['p.example', 'q.example', 'x.example', 'y.example'].entries()) {
      const hello = await captureClientHello(servername);
      const header = Buffer.from(`PROXY TCP4 10.1.2.${i + 3} 10.0.0.1 5555 443\r\n`);
      const socket = net.connect({ host: '127.0.0.1', port: t.port });
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      if (i % 2 === 0) {
        socket.write(Buffer.concat([header, hello]));
      } else {
        // The header alone, then the ClientHello a few bytes at a time.
        socket.write(header);
        for (let at = 0; at < hello.length; at += 7) {
          await new Promise((r) => setTimeout(r, 1));
          socket.write(hello.subarray(at, at + 7));
        }
      }
      const greeting = await new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
      expect(greeting, servername).toBe((await routeOf(t, servername)).upstream);
      const upstream = upstreams.find((u) => u.name === greeting)!;
      const expected = Buffer.concat([Buffer.from(`PROXY TCP4 10.1.2.${i + 3} 10.0.0.1 5555 443\r\n`), hello]);
      await waitFor(() => upstream.received.some((r) => r.equals(expected)), 5_000, `${servername}: header and ClientHello at ${greeting}`);
      socket.destroy();
    }
    // Every one of them routed by its server name, none by the address after a wait.
    await waitFor(() => logs.filter((l) => l.component === 'access').length >= 4, 5_000, 'access lines');
    expect(logs.filter((l) => l.component === 'access').map((l) => l.keySource)).toEqual(['sni', 'sni', 'sni', 'sni']);
  });
});

describe('mqtt', () => {
  interface Broker {
    readonly name: string;
    readonly address: string;
    readonly port: number;
    readonly aedes: Aedes;
    /** Client ids of every connection it accepted. */
    readonly clients: string[];
    close(): Promise<void>;
  }

  async function startBroker(name: string): Promise<Broker> {
    const aedes = await Aedes.createBroker();
    const clients: string[] = [];
    aedes.on('client', (client) => clients.push(client.id));
    const server = net.createServer(aedes.handle);
    const port = await listenLoopback(server);
    return {
      name,
      port,
      address: `127.0.0.1:${port}`,
      aedes,
      clients,
      close: async () => {
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  /** An mqtt client through tether from 127.0.0.9 (one address for every client). */
  function connect(port: number, options: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
    const client = new mqtt.MqttClient(() => net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.9' }), {
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ...options,
    });
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve(client));
      client.once('error', reject);
      client.once('close', () => reject(new Error(`${options.clientId}: closed before CONNACK`)));
    });
  }

  it('30 client ids from one address, each reconnecting 3 times: one broker per id; a persistent session finds its queued messages', async () => {
    const brokers: Broker[] = [];
    for (const name of ['m1', 'm2', 'm3']) brokers.push(keep(await startBroker(name)));
    const t = keep(
      await startTether({
        TETHER_UPSTREAMS: brokers.map((b) => `${b.name}=${b.address}`).join(','),
        TETHER_KEY: 'mqtt:client-id,source-ip',
        TETHER_HEALTH: 'off',
      }),
    );
    const ids = Array.from({ length: 30 }, (_, i) => `sensor-${i}`);
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        ids.map(async (clientId, i) => {
          // MQTT 3.1.1 and 3.1 (aedes speaks no 5; the readers' own tests cover it).
          const client = await connect(t.port, i % 2 === 0 ? { clientId } : { clientId, protocolId: 'MQIsdp', protocolVersion: 3 });
          await client.endAsync();
        }),
      );
    }
    const used = new Set<string>();
    for (const id of ids) {
      const holders = brokers.filter((b) => b.clients.includes(id));
      expect(holders.map((b) => b.name), id).toHaveLength(1);
      expect(holders[0]!.clients.filter((c) => c === id), id).toHaveLength(3);
      expect((await routeOf(t, id)).upstream, id).toBe(holders[0]!.name);
      used.add(holders[0]!.name);
    }
    expect(used.size).toBe(3);

    // A persistent session: subscribed, gone, messages queued for it on its broker, back.
    const persistent = await connect(t.port, { clientId: 'keeper', clean: false });
    await persistent.subscribeAsync('jobs/keeper', { qos: 1 });
    await persistent.endAsync();
    const home = brokers.find((b) => b.clients.includes('keeper'))!;
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) =>
        home.aedes.publish(
          { cmd: 'publish', topic: 'jobs/keeper', payload: Buffer.from(`job ${i}`), qos: 1, retain: false, dup: false },
          (err?: Error) => (err ? reject(err) : resolve()),
        ),
      );
    }
    const received: string[] = [];
    const back = new mqtt.MqttClient(() => net.connect({ host: '127.0.0.1', port: t.port, localAddress: '127.0.0.9' }), {
      clientId: 'keeper',
      clean: false,
      reconnectPeriod: 0,
    });
    back.on('message', (_topic, payload: Buffer) => received.push(payload.toString()));
    await waitFor(() => received.length >= 3, 10_000, 'the queued messages');
    expect(received.sort()).toEqual(['job 0', 'job 1', 'job 2']);
    await back.endAsync();
    expect(brokers.filter((b) => b.clients.includes('keeper')).map((b) => b.name)).toEqual([home.name]);
  });
});
