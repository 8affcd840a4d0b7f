import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { clientAddress, closed, waitFor } from '../helpers/clients.js';
import { seededRandom } from '../helpers/random.js';
import { startTether, type RunningTether } from '../helpers/tether.js';
import { acceptedRelayMethod, useAcceptedRelayMethod, type AcceptedRelayMethod } from '../../src/proxy/relay.js';
import { listenLoopback } from '../helpers/listen.js';
import { handleSocketsAvailable, useHandles } from '../../src/net/tcp-binding.js';

/**
 * tether reads into relay buffers (src/proxy/relay.ts): quiet sockets share one
 * buffer and have their bytes copied out, sockets in a burst read into a buffer of
 * their own and stop reading while a write from it is queued. A mistake there shows
 * as bytes of one connection in another, or bytes overwritten before they were sent:
 * these tests push many connections at once, with slow readers, through an echo
 * upstream and compare what comes back with what was sent.
 */

let tether: RunningTether | null = null;
let echo: net.Server | null = null;

afterEach(async () => {
  useAcceptedRelayMethod(acceptedRelayMethod);
  useHandles(true);
  await tether?.close();
  tether = null;
  echo?.close();
  echo = null;
});

/** Upstream for the drip test: 16 MiB in 1,000-byte writes, one per turn of the loop. */
const DRIP = payload(seededRandom(0xd1), 16 * 1024 * 1024);

function drip(socket: net.Socket): void {
  let offset = 0;
  const next = (): void => {
    if (socket.destroyed) return;
    if (offset >= DRIP.length) {
      socket.end();
      return;
    }
    const piece = DRIP.subarray(offset, offset + 1000);
    offset += piece.length;
    if (socket.write(piece)) setImmediate(next);
    else socket.once('drain', next);
  };
  next();
}

/**
 * An echo server, except that a connection whose first byte is 'D' gets DRIP
 * instead: many small reads for tether, each through the shared buffer.
 */
async function startEcho(): Promise<number> {
  echo = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      if (first[0] === 0x44) {
        drip(socket);
        return;
      }
      socket.write(first);
      socket.pipe(socket);
    });
  });
  return listenLoopback(echo);
}

/** Random bytes; never starting with 'D', which asks the upstream for DRIP. */
function payload(random: () => number, bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (random() * 256) | 0;
  if (bytes > 0 && out[0] === 0x44) out[0] = 0;
  return out;
}

interface Exchange {
  sent: string;
  received: string;
  bytes: number;
}

/**
 * One client: writes `data` in pieces of random sizes (some tiny, some far above a
 * read buffer), reads the echo (pausing now and then when `slow`), and resolves with
 * digests of both once the upstream's FIN comes back.
 */
function exchange(port: number, localAddress: string, data: Buffer, random: () => number, slow: boolean): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress, allowHalfOpen: true });
    const received = createHash('sha256');
    let bytes = 0;
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      received.update(chunk);
      bytes += chunk.length;
      if (slow && random() < 0.2) {
        socket.pause();
        setTimeout(() => socket.resume(), 1 + random() * 5);
      }
    });
    socket.on('end', () => {
      socket.end();
      resolve({ sent: createHash('sha256').update(data).digest('hex'), received: received.digest('hex'), bytes });
    });
    let offset = 0;
    const writeSome = (): void => {
      while (offset < data.length) {
        const size = random() < 0.5 ? 1 + Math.floor(random() * 600) : Math.floor(random() * 300_000);
        const piece = data.subarray(offset, Math.min(data.length, offset + size));
        offset += piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', writeSome);
          return;
        }
        if (random() < 0.1) {
          setImmediate(writeSome);
          return;
        }
      }
      socket.end();
    };
    socket.on('connect', writeSome);
  });
}

describe('relay buffers', () => {
  it('sets accepted sockets up in place on this Node (no second socket per connection)', () => {
    expect(acceptedRelayMethod).toBe('in-place');
  });

  it('serves connections on their TCP handles on this Node (net/handle-socket.ts)', () => {
    expect(handleSocketsAvailable).toBe(true);
  });

  // On handles (both sides), and on net.Socket as where handles are not available:
  // set up in place, or moved into a second socket.
  it.each<AcceptedRelayMethod | 'handles'>(['handles', 'in-place', 'adopt'])('keeps 48 concurrent connections byte for byte apart, quiet and bulk, fast and slow readers (%s)', async (method) => {
    useHandles(method === 'handles');
    if (method !== 'handles') useAcceptedRelayMethod(method);
    const port = await startEcho();
    tether = await startTether({ TETHER_UPSTREAMS: `echo=127.0.0.1:${port}`, TETHER_HEALTH: 'off' });
    const random = seededRandom(0x7e1a);
    const runs = Array.from({ length: 48 }, (_, i) => {
      // Sizes from a few bytes (always through the shared buffer) to 6 MiB (bursts).
      const size = i % 4 === 0 ? 6 * 1024 * 1024 : Math.floor(random() * (i % 2 === 0 ? 400_000 : 3_000));
      const data = payload(random, size);
      return { data, run: exchange(tether!.port, clientAddress(i), data, seededRandom(i + 1), i % 3 === 0) };
    });
    const results = await Promise.all(runs.map((r) => r.run));
    results.forEach((result, i) => {
      expect(result.bytes, `connection ${i}`).toBe(runs[i]!.data.length);
      expect(result.received, `connection ${i}`).toBe(result.sent);
    });
    const listener = tether.tether.runtime()!.listener;
    await waitFor(() => listener.active === 0, 10_000, 'every session to end');
    const total = runs.reduce((sum, r) => sum + r.data.length, 0);
    expect(listener.counters.fromClient).toBe(total);
    expect(listener.counters.toClient).toBe(total);
  });

  it('delivers chatty connections intact while a bulk transfer into a stalled reader holds its buffer', async () => {
    const port = await startEcho();
    tether = await startTether({ TETHER_UPSTREAMS: `echo=127.0.0.1:${port}`, TETHER_HEALTH: 'off' });
    // The stalled one: writes 32 MiB and reads nothing for a while, so tether's reads
    // from the echo upstream stop with a write queued from that connection's buffer.
    const stalled = net.connect({ host: '127.0.0.1', port: tether.port, localAddress: clientAddress(200) });
    const big = payload(seededRandom(99), 32 * 1024 * 1024);
    stalled.pause();
    stalled.write(big);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const random = seededRandom(0x5eed);
    const chatty = Array.from({ length: 20 }, (_, i) =>
      exchange(tether!.port, clientAddress(i + 1), payload(random, 20_000 + i * 500), seededRandom(1000 + i), false),
    );
    for (const result of await Promise.all(chatty)) expect(result.received).toBe(result.sent);
    // Now drain the stalled one: every byte, in order.
    const received = createHash('sha256');
    let bytes = 0;
    const done = new Promise<void>((resolve) =>
      stalled.on('data', (chunk: Buffer) => {
        received.update(chunk);
        bytes += chunk.length;
        if (bytes >= big.length) resolve();
      }),
    );
    stalled.resume();
    await done;
    expect(bytes).toBe(big.length);
    expect(received.digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
    stalled.destroy();
    await closed(stalled);
  });

  it('keeps small reads queued for a stalled client apart from every other connection', async () => {
    const port = await startEcho();
    tether = await startTether({ TETHER_UPSTREAMS: `echo=127.0.0.1:${port}`, TETHER_HEALTH: 'off' });
    // The upstream drips 1,000-byte writes to a client that does not read: once the
    // client's kernel buffer is full, tether's writes to it stay queued while other
    // connections read through the same shared buffer.
    const stalled = net.connect({ host: '127.0.0.1', port: tether.port, localAddress: clientAddress(201) });
    stalled.pause();
    stalled.write('D');
    const listener = tether.tether.runtime()!.listener;
    await waitFor(() => [...listener.sessions].some((s) => s.client.writableLength > 0), 20_000, 'writes to the stalled client to queue');
    const random = seededRandom(0xc0de);
    for (let round = 0; round < 3; round++) {
      const chatty = Array.from({ length: 16 }, (_, i) =>
        exchange(tether!.port, clientAddress(i + 1), payload(random, 1 + Math.floor(random() * 50_000)), seededRandom(round * 100 + i), false),
      );
      for (const result of await Promise.all(chatty)) expect(result.received).toBe(result.sent);
    }
    const received = createHash('sha256');
    let bytes = 0;
    const done = new Promise<void>((resolve) => {
      stalled.on('data', (chunk: Buffer) => {
        received.update(chunk);
        bytes += chunk.length;
      });
      stalled.on('end', () => resolve());
    });
    stalled.resume();
    await done;
    expect(bytes).toBe(DRIP.length);
    expect(received.digest('hex')).toBe(createHash('sha256').update(DRIP).digest('hex'));
    stalled.destroy();
  });
});
