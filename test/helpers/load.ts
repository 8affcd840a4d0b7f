import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { WebSocket } from 'ws';
import { clientAddress, connectAndGreet, waitFor } from './clients.js';
import type { TetherProcess } from './tether.js';

/**
 * Helpers for tests that hold many connections or keep traffic flowing while
 * something else happens (load, faults, reloads, hostile clients).
 */

/** Open file descriptors of a process (Linux: the entries of /proc/PID/fd). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export interface FileLimit {
  readonly soft: number;
  readonly hard: number;
}

/** RLIMIT_NOFILE of a process ('self' by default), from /proc/PID/limits. */
export function fileLimit(pid: number | 'self' = 'self'): FileLimit {
  const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  if (!match) throw new Error(`no "Max open files" line in /proc/${pid}/limits`);
  const value = (text: string): number => (text === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(text));
  return { soft: value(match[1]!), hard: value(match[2]!) };
}

/**
 * How to raise the open-file limit, for failure messages: children inherit the
 * limit of the shell that starts the tests.
 */
export function raiseFileLimitHint(needed: number, limit: FileLimit = fileLimit()): string {
  const room = limit.hard >= needed
    ? `the hard limit (${limit.hard}) allows it: run \`ulimit -n ${needed}\` (or more) in the shell before \`npm test\`, as .ci/run does`
    : `the hard limit is ${limit.hard}: raise it where the machine is set up (\`ulimit -Hn\` as a privileged user, \`LimitNOFILE=\` in systemd, \`--ulimit nofile=${needed}:${needed}\` in Docker), then \`ulimit -n ${needed}\``;
  return `open-file limit ${limit.soft} is below the ${needed} this test needs; ${room}`;
}

/** Node flags for spawnTether so that collectGarbage can reach the process. */
export const INSPECTABLE = ['--inspect=127.0.0.1:0'];

/**
 * A full, compacting garbage collection in a tether spawned with INSPECTABLE
 * (HeapProfiler.collectGarbage over the inspector's loopback WebSocket); resolves with
 * the bytes of V8 heap in use after it (Runtime.getHeapUsage).
 *
 * Why a test needs it: V8 collects only when the program allocates. A balancer that
 * has just closed 10,000 connections and then sits idle allocates nothing, so the
 * dead sessions, sockets and their native handles stay in RSS until V8's memory
 * reducer or the next traffic gets to them (a minute or more). Comparing RSS "idle"
 * with RSS "after" is only a leak check when both are taken right after a full GC.
 */
export async function collectGarbage(proc: TetherProcess): Promise<number> {
  let url: string | null = null;
  await waitFor(() => (url = /ws:\/\/127\.0\.0\.1:\d+\/[\w-]+/.exec(proc.stderr)?.[0] ?? null) !== null, 10_000, 'the inspector address (spawn with INSPECTABLE)');
  const ws = new WebSocket(url!);
  let next = 0;
  const call = (method: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => reject(new Error(`no answer to ${method} within 30 s`)), 30_000);
      const onMessage = (data: unknown): void => {
        const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
        if (message.id !== id) return;
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(message.result);
      };
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ id, method }));
    });
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    // Twice: native handles are released by weak callbacks that run after a GC, and
    // what only they held goes in the next one.
    for (let i = 0; i < 2; i++) {
      await call('HeapProfiler.collectGarbage');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return (await call('Runtime.getHeapUsage') as { usedSize: number }).usedSize;
  } finally {
    ws.close();
  }
}

export interface HeldConnection {
  readonly socket: net.Socket;
  /** The upstream that greeted it. */
  readonly upstream: string;
  readonly localAddress: string;
}

export interface OpenOptions {
  /** Source address of connection i; default clientAddress(i) (one address each). */
  readonly address?: (i: number) => string;
  /** Connects in flight at once (default 200): enough to be quick, few enough for the backlog. */
  readonly concurrency?: number;
  /** Per connection, until the upstream's greeting (default 20 s: a loaded machine). */
  readonly timeoutMs?: number;
}

/**
 * Open `count` connections through the balancer at `port` and read each upstream's
 * greeting. Rejects, naming the connection, if one is closed instead of greeted, so
 * a load test cannot pass on connections that never reached an upstream.
 */
export async function openConnections(port: number, count: number, options: OpenOptions = {}): Promise<HeldConnection[]> {
  const address = options.address ?? clientAddress;
  const concurrency = Math.min(count, options.concurrency ?? 200);
  const timeoutMs = options.timeoutMs ?? 20_000;
  const held: HeldConnection[] = new Array<HeldConnection>(count);
  let next = 0;
  let failed: Error | null = null;
  const worker = async (): Promise<void> => {
    while (next < count && failed === null) {
      const i = next++;
      const localAddress = address(i);
      try {
        const { socket, upstream } = await connectAndGreet(port, localAddress, timeoutMs);
        if (upstream === null) throw new Error(`connection ${i} from ${localAddress} was closed before an upstream greeted it`);
        socket.on('error', () => {});
        held[i] = { socket, upstream, localAddress };
      } catch (err) {
        failed ??= err instanceof Error ? err : new Error(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failed !== null) {
    for (const h of held) h?.socket.destroy();
    throw failed;
  }
  return held;
}

/** Destroy every socket and resolve once all of them have closed. */
export async function closeAll(sockets: Iterable<net.Socket>): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const socket of sockets) {
    if (!socket.closed) waits.push(new Promise((resolve) => socket.once('close', () => resolve())));
    socket.destroy();
  }
  await Promise.all(waits);
}

/** One connection under EchoTraffic: what it sent, what came back, whether it was lost. */
export interface Lane {
  readonly socket: net.Socket;
  readonly tag: string;
  /** Messages whose whole echo came back intact. */
  rounds: number;
  bytesSent: number;
  bytesEchoed: number;
  /** The socket closed while traffic was running (a dropped connection). */
  dropped: boolean;
  /** An echo that differed from what was sent (never expected). */
  corrupt: boolean;
}

export interface TrafficOptions {
  /** Bytes per message (default 1 KiB); the next is sent once the echo is whole. */
  readonly messageBytes?: number;
  /** Pause between an echo and the next message (default 0: back to back). */
  readonly pauseMs?: number;
  /** Seed for message contents (default 1): every lane sends its own bytes. */
  readonly seed?: number;
}

export interface TrafficTotals {
  readonly lanes: number;
  readonly rounds: number;
  readonly bytesSent: number;
  readonly bytesEchoed: number;
  readonly dropped: number;
  readonly corrupt: number;
}

/**
 * Continuous echo traffic on connections to echoing upstreams: each lane sends a
 * message, waits for every byte of it to come back, checks it, and sends the next.
 * Counts every byte both ways, so a test can show that nothing was lost while
 * upstreams died, configurations reloaded or the admin API changed membership.
 * A lane whose socket closes before stop() is counted as dropped.
 */
export class EchoTraffic {
  readonly #lanes: InternalLane[];
  readonly #messageBytes: number;
  readonly #pauseMs: number;
  #running = false;
  #idleWaiters: (() => void)[] = [];
  #inFlight = 0;

  constructor(connections: readonly { socket: net.Socket; tag?: string; upstream?: string }[], options: TrafficOptions = {}) {
    this.#messageBytes = options.messageBytes ?? 1024;
    this.#pauseMs = options.pauseMs ?? 0;
    const seed = options.seed ?? 1;
    this.#lanes = connections.map((c, i) => ({
      socket: c.socket,
      tag: c.tag ?? c.upstream ?? '',
      rounds: 0,
      bytesSent: 0,
      bytesEchoed: 0,
      dropped: false,
      corrupt: false,
      message: laneMessage(this.#messageBytes, seed, i),
    }));
  }

  get lanes(): readonly Lane[] {
    return this.#lanes;
  }

  /** Start every lane. */
  start(): void {
    this.#running = true;
    for (const lane of this.#lanes) this.#attach(lane);
  }

  /** Stop sending; resolves once every lane's message in flight is back (or its socket closed). */
  async stop(timeoutMs = 20_000): Promise<TrafficTotals> {
    this.#running = false;
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${this.#inFlight} echoes still missing ${timeoutMs} ms after stop`)), timeoutMs);
        this.#idleWaiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
    for (const lane of this.#lanes) lane.detach?.();
    return this.totals();
  }

  totals(lanes: readonly Lane[] = this.lanes): TrafficTotals {
    let rounds = 0;
    let bytesSent = 0;
    let bytesEchoed = 0;
    let dropped = 0;
    let corrupt = 0;
    for (const l of lanes) {
      rounds += l.rounds;
      bytesSent += l.bytesSent;
      bytesEchoed += l.bytesEchoed;
      if (l.dropped) dropped++;
      if (l.corrupt) corrupt++;
    }
    return { lanes: lanes.length, rounds, bytesSent, bytesEchoed, dropped, corrupt };
  }

  #attach(lane: InternalLane): void {
    const { socket, message } = lane;
    let received = 0;
    let busy = false;
    let timer: NodeJS.Timeout | null = null;
    const send = (): void => {
      timer = null;
      if (!this.#running || socket.destroyed) return;
      busy = true;
      this.#inFlight++;
      received = 0;
      lane.bytesSent += message.length;
      socket.write(message);
    };
    const settle = (): void => {
      if (!busy) return;
      busy = false;
      this.#inFlight--;
      if (this.#inFlight === 0) for (const w of this.#idleWaiters.splice(0)) w();
    };
    const onData = (chunk: Buffer): void => {
      if (!busy) {
        lane.corrupt = true; // bytes nobody asked for
        return;
      }
      const end = received + chunk.length;
      if (end > message.length || !chunk.equals(message.subarray(received, end))) lane.corrupt = true;
      received = Math.min(end, message.length);
      lane.bytesEchoed += chunk.length;
      if (received < message.length) return;
      lane.rounds++;
      settle();
      if (!this.#running) return;
      if (this.#pauseMs > 0) timer = setTimeout(send, this.#pauseMs);
      else setImmediate(send);
    };
    const onClose = (): void => {
      if (this.#running || busy) lane.dropped = true;
      if (timer) clearTimeout(timer);
      settle();
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
    lane.detach = () => {
      socket.off('data', onData);
      socket.off('close', onClose);
      if (timer) clearTimeout(timer);
    };
    if (socket.destroyed) onClose();
    else send();
  }
}

interface InternalLane extends Lane {
  readonly message: Buffer;
  detach?: () => void;
}

/** Deterministic bytes for one lane, different per lane, so a crossed stream shows. */
function laneMessage(size: number, seed: number, lane: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (Math.imul(seed, 0x9e3779b1) ^ Math.imul(lane + 1, 0x85ebca6b)) >>> 0;
  for (let i = 0; i < size; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export interface ChurnOptions {
  /** Source address of the n-th connection; default clientAddress(n % 1000). */
  readonly address?: (n: number) => string;
  /** Connections in flight at once (default 4). */
  readonly concurrency?: number;
  /** Per connection: greeting and echo (default 10 s). */
  readonly timeoutMs?: number;
}

export interface ChurnTotals {
  /** Connections greeted by an upstream whose echo came back whole. */
  readonly served: number;
  /** What went wrong with the others (closed unanswered, timed out, bad echo). */
  readonly failures: readonly string[];
  /** Which upstream served how many. */
  readonly byUpstream: ReadonlyMap<string, number>;
}

/**
 * New connections, one after another on a few lanes, while something else happens:
 * each is greeted by an upstream, echoes a short message, and is closed. Shows that
 * a balancer keeps routing new clients through reloads, membership changes and
 * store outages, not only that old connections survive them.
 */
export class ConnectionChurn {
  readonly #port: number;
  readonly #address: (n: number) => string;
  readonly #concurrency: number;
  readonly #timeoutMs: number;
  #running = false;
  #next = 0;
  #served = 0;
  readonly #failures: string[] = [];
  readonly #byUpstream = new Map<string, number>();
  #loops: Promise<void>[] = [];

  constructor(port: number, options: ChurnOptions = {}) {
    this.#port = port;
    this.#address = options.address ?? ((n) => clientAddress(n % 1000));
    this.#concurrency = options.concurrency ?? 4;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  get served(): number {
    return this.#served;
  }

  start(): void {
    this.#running = true;
    this.#loops = Array.from({ length: this.#concurrency }, () => this.#loop());
  }

  /** Stop opening; resolves once the connections in flight are done. */
  async stop(): Promise<ChurnTotals> {
    this.#running = false;
    await Promise.all(this.#loops);
    return { served: this.#served, failures: this.#failures, byUpstream: this.#byUpstream };
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      const n = this.#next++;
      const from = this.#address(n);
      try {
        const { socket, upstream } = await connectAndGreet(this.#port, from, this.#timeoutMs);
        if (upstream === null) {
          this.#failures.push(`connection ${n} from ${from}: closed before an upstream greeted it`);
          continue;
        }
        const text = `churn ${n}\n`;
        const echo = await echoOnce(socket, text, this.#timeoutMs);
        socket.destroy();
        if (echo !== text) {
          this.#failures.push(`connection ${n} from ${from} (${upstream}): echo ${JSON.stringify(echo)}`);
          continue;
        }
        this.#served++;
        this.#byUpstream.set(upstream, (this.#byUpstream.get(upstream) ?? 0) + 1);
      } catch (err) {
        this.#failures.push(`connection ${n} from ${from}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

/** Write `text` and read back as many bytes (what came before a close or the timeout, otherwise). */
function echoOnce(socket: net.Socket, text: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const done = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', done);
      resolve(got);
    };
    const onData = (chunk: Buffer): void => {
      got += chunk.toString('latin1');
      if (got.length >= text.length) done();
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', onData);
    socket.once('close', done);
    socket.write(text);
  });
}
