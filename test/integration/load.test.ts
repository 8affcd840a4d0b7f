import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/clients.js';
import {
  closeAll,
  collectGarbage,
  EchoTraffic,
  fileLimit,
  INSPECTABLE,
  openConnections,
  openFds,
  raiseFileLimitHint,
  type HeldConnection,
} from '../helpers/load.js';
import { spawnUpstream, type UpstreamProcess } from '../helpers/processes.js';
import { rssKiB, spawnTether, spawnedAddresses, type TetherProcess } from '../helpers/tether.js';

/**
 * Issue 8, load: 10,000 concurrent proxied connections held for 30 s with traffic on
 * a tenth of them; afterwards tether's open descriptors are back at the idle count
 * and its RSS within 10% of idle. Upstreams run in processes of their own and
 * clients in this one, so every descriptor in tether's /proc/PID/fd is its own.
 *
 * How idle and after are measured (docs/reliability.md, "Load: 10,000
 * connections"): "idle" follows three warm-up cycles of the same size (open every
 * connection, traffic on a tenth for 2 s, close), and both idle and after are read
 * right after a forced full GC (collectGarbage in helpers/load.ts says why). The warm-up matters because glibc
 * keeps memory freed by native handles in its arena for reuse rather than returning
 * it: the first cycle raises RSS once, later cycles of the same size reuse it. A leak
 * in tether would grow from one cycle to the next, which is what this compares; the
 * V8 heap in use after the GC is compared too, where a connection's objects left
 * behind would show to the byte.
 */
const TARGET = 10_000;
const HOLD_MS = 30_000;
/** Descriptors tether may need beyond 2 per connection and its idle set (admin calls, logs). */
const HEADROOM = 64;
/**
 * V8 heap in use after the cycle, beyond idle, per connection that came and went: far
 * less than any connection's objects, so one left behind in a hundred shows.
 */
const HEAP_SLACK_BYTES_PER_CONNECTION = 200;
/** RSS after the cycle, beyond idle (issue 8: within 10%). */
const RSS_SLACK = 0.1;
/** Below this share of TARGET the run would no longer be the load the issue asks for. */
const MIN_SHARE = 0.99;

let proc: TetherProcess | null = null;
let upstreams: UpstreamProcess[] = [];
const held: HeldConnection[] = [];

afterAll(async () => {
  for (const h of held.splice(0)) h.socket.destroy();
  proc?.kill('SIGKILL');
  await Promise.all(upstreams.map((u) => u.kill()));
});

/** Active connections tether reports; Connection: close, so no admin socket lingers in its descriptor table. */
function activeConnections(admin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${admin}/upstreams`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve((JSON.parse(body) as { active: number }[]).reduce((n, u) => n + u.active, 0)));
    });
    req.on('error', reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface AfterGc {
  /** KiB, the median of five samples 200 ms apart. */
  readonly rss: number;
  /** KiB of V8 heap in use. */
  readonly heap: number;
}

/** Memory right after a full GC. */
async function afterGc(p: TetherProcess): Promise<AfterGc> {
  const heap = Math.round((await collectGarbage(p)) / 1024);
  await sleep(500);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(rssKiB(p.pid));
    await sleep(200);
  }
  return { rss: samples.sort((a, b) => a - b)[2]!, heap };
}

/**
 * Descriptors once the last admin call's socket has gone: the least of five samples
 * 100 ms apart, half a second after the call.
 */
async function settledFds(pid: number): Promise<number> {
  await sleep(500);
  let least = Number.MAX_SAFE_INTEGER;
  for (let i = 0; i < 5; i++) {
    least = Math.min(least, openFds(pid));
    await sleep(100);
  }
  return least;
}

/** How many connections the open-file limit lets one tether process hold; throws when it is too low. */
function connectionBudget(idleFds: number): number {
  const limit = fileLimit();
  const needed = idleFds + HEADROOM + 2 * TARGET;
  if (limit.soft >= needed) return TARGET;
  // Children inherit this process's limit; a soft limit under the hard one is a
  // setting of the shell that started the tests.
  if (limit.soft < Math.min(needed, limit.hard)) throw new Error(`load test: ${raiseFileLimitHint(needed, limit)}`);
  // The hard limit is the ceiling and no unprivileged process can lift it (this
  // project's machines: 20,000, which one process fills at 9,9xx proxied connections).
  const fit = Math.floor((limit.soft - idleFds - HEADROOM) / 2);
  if (fit < TARGET * MIN_SHARE) throw new Error(`load test: ${raiseFileLimitHint(needed, limit)}`);
  console.warn(`load test: hard open-file limit ${limit.hard}: one tether process holds ${fit} proxied connections, not ${TARGET} (2 descriptors each)`);
  return fit;
}

describe('load', () => {
  it(
    `holds ${TARGET.toLocaleString('en-US')} proxied connections for ${HOLD_MS / 1000} s with traffic on a tenth; descriptors and RSS return to idle`,
    async () => {
      upstreams = await Promise.all(['a', 'b', 'c', 'd'].map((n) => spawnUpstream(n)));
      proc = spawnTether(
        {
          TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','),
          TETHER_LISTEN: '127.0.0.1:0',
          TETHER_ADMIN: '127.0.0.1:0',
          TETHER_HEALTH: 'off',
        },
        [],
        INSPECTABLE,
      );
      const { port, admin } = await spawnedAddresses(proc);
      const pid = proc.pid;
      const count = connectionBudget(openFds(pid));

      // Warm-up: cycles of the same size, briefly busy, then closed. "Idle" is the
      // highest of the three readings: how much glibc's arenas keep after a cycle
      // varies, and a low reading would make an ordinary "after" look like growth (two
      // cycles once read 116 MiB where runs read 124-140 before and after).
      let idle: AfterGc = { rss: 0, heap: 0 };
      let idleFds = 0;
      for (const cycle of [1, 2, 3]) {
        const warm = await openConnections(port, count, { address: (i) => `127.0.${100 + Math.floor(i / 249)}.${2 + (i % 249)}` });
        const warmTraffic = new EchoTraffic(warm.filter((_, i) => i % 10 === 0), { messageBytes: 4096, pauseMs: 50 });
        warmTraffic.start();
        await sleep(2_000);
        await warmTraffic.stop();
        await closeAll(warm.map((h) => h.socket));
        await waitFor(async () => (await activeConnections(admin)) === 0, 20_000, `the warm-up connections of cycle ${cycle} to end`);
        idleFds = await settledFds(pid);
        const reading = await afterGc(proc);
        idle = { rss: Math.max(idle.rss, reading.rss), heap: Math.max(idle.heap, reading.heap) };
      }

      // The load: every connection greeted by an upstream and counted by tether.
      const started = Date.now();
      held.push(...(await openConnections(port, count)));
      const openedMs = Date.now() - started;
      await waitFor(async () => (await activeConnections(admin)) === count, 20_000, `tether to count ${count} active connections`);
      const loadedFds = openFds(pid);
      expect(loadedFds).toBeGreaterThanOrEqual(idleFds + 2 * count);
      let closedEarly = 0;
      for (const h of held) h.socket.once('close', () => closedEarly++);

      // Traffic on every tenth connection for the whole hold; the rest sit idle.
      const traffic = new EchoTraffic(held.filter((_, i) => i % 10 === 0), { messageBytes: 4096, pauseMs: 50 });
      let peakRss = rssKiB(pid);
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssKiB(pid))), 500);
      traffic.start();
      await sleep(HOLD_MS);
      const totals = await traffic.stop();
      clearInterval(sampler);
      expect(closedEarly).toBe(0);
      expect(totals.dropped).toBe(0);
      expect(totals.corrupt).toBe(0);
      expect(totals.bytesEchoed).toBe(totals.bytesSent);
      // Traffic really flowed on every busy connection, not just on a few.
      expect(traffic.lanes.every((l) => l.rounds >= 10)).toBe(true);

      await closeAll(held.splice(0).map((h) => h.socket));
      await waitFor(async () => (await activeConnections(admin)) === 0, 20_000, 'every connection to end');
      await waitFor(() => openFds(pid) <= idleFds, 20_000, `tether's descriptors back to the idle ${idleFds}`);
      const fdsAfter = await settledFds(pid);
      const after = await afterGc(proc);
      console.log(
        `load: ${count} connections opened in ${openedMs} ms; ${totals.lanes} busy, ${totals.rounds} echoes, ${totals.bytesEchoed} bytes; ` +
          `fds idle ${idleFds} loaded ${loadedFds} after ${fdsAfter}; RSS KiB idle ${idle.rss} peak ${peakRss} after ${after.rss} (${((after.rss / idle.rss - 1) * 100).toFixed(1)}%); ` +
          `V8 heap KiB idle ${idle.heap} after ${after.heap} (${((after.heap / idle.heap - 1) * 100).toFixed(1)}%)`,
      );
      expect(fdsAfter).toBe(idleFds);
      expect(after.heap - idle.heap).toBeLessThanOrEqual((count * HEAP_SLACK_BYTES_PER_CONNECTION) / 1024);
      expect(after.rss).toBeLessThanOrEqual(idle.rss * (1 + RSS_SLACK));
    },
    240_000,
  );
});
