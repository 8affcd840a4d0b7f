import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { DefaultHttpStack, DetailedError, Upload, type HttpRequest, type HttpResponse } from 'tus-js-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanups } from '../helpers/http.js';
import { startTusUpstream, type TusUpstream } from '../helpers/tus.js';
import { adminCall, startTether, type RunningTether } from '../helpers/tether.js';

/**
 * tus (resumable uploads) through http mode: the upload is created by a POST that
 * carries no key (power of two choices picks an upstream), then continued by PATCHes
 * to /files/ID. Only the upstream that created ID has it, so the PATCHes must follow
 * the pin learned from the POST's `Location` header, whatever the hash of ID says.
 */

const FILES = 12;
const FILE_BYTES = 300 * 1024;
const CHUNK = 32 * 1024;
const PARALLEL = 4;
/** Client keep-alive connections the parallel uploads share. */
const CONNECTIONS = 3;
/** 300 KiB in 32 KiB chunks: nine full ones and one of 12 KiB. */
const CHUNKS_PER_FILE = Math.ceil(FILE_BYTES / CHUNK);
const NAMES = ['tus-a', 'tus-b', 'tus-c'] as const;

interface Rig {
  readonly upstreams: TusUpstream[];
  readonly tether: RunningTether;
  /** Upload ids in the order their PATCHes reached any upstream. */
  readonly patchOrder: string[];
}

const cleanups = new Cleanups();

afterEach(() => cleanups.runAll());

async function startRig(learn: boolean): Promise<Rig> {
  let adminBase = '';
  const patchOrder: string[] = [];
  const upstreams: TusUpstream[] = [];
  for (const name of NAMES) {
    const upstream = await startTusUpstream(name, () => adminBase, patchOrder);
    upstreams.push(upstream);
    cleanups.register(() => upstream.close());
  }
  const env: Record<string, string> = {
    TETHER_MODE: 'http',
    TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=127.0.0.1:${u.port}`).join(','),
    TETHER_KEY: 'path:^/files/([^/?]+)',
    TETHER_HEALTH: 'off',
  };
  if (learn) env.TETHER_LEARN = 'header:location=/files/([^/?]+)';
  const tether = await startTether(env);
  cleanups.register(() => tether.close());
  adminBase = tether.admin;
  return { upstreams, tether, patchOrder };
}

interface UploadResult {
  readonly data: Buffer;
  /** The upload URL (tether's address + /files/ID), once created. */
  url: string | null;
  error: Error | null;
}

interface ClientTrace {
  /** Client keep-alive connection -> upload URLs and upstreams of the requests it carried. */
  readonly perSocket: Map<net.Socket, { uploads: Set<string>; upstreams: Set<string> }>;
  maxInFlight: number;
}

/**
 * Upload every buffer with tus-js-client, `PARALLEL` uploads at a time, all over one
 * keep-alive agent. The agent keeps fewer connections than there are uploads, so one
 * request always waits for a connection and gets the one just freed by another
 * upload: every connection carries requests of different uploads in turn (with one
 * connection per upload, an upload would keep its connection to the end and only
 * hand it on when done).
 */
async function uploadAll(port: number, files: readonly Buffer[]): Promise<{ results: UploadResult[]; trace: ClientTrace }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  cleanups.register(async () => agent.destroy());
  const httpStack = new DefaultHttpStack({ agent });
  const trace: ClientTrace = { perSocket: new Map(), maxInFlight: 0 };
  const results: UploadResult[] = files.map((data) => ({ data, url: null, error: null }));
  let inFlight = 0;
  let next = 0;
  const onAfterResponse = (req: HttpRequest, res: HttpResponse): void => {
    const socket = (req.getUnderlyingObject() as http.ClientRequest).socket;
    if (socket === null) return;
    let seen = trace.perSocket.get(socket);
    if (seen === undefined) {
      seen = { uploads: new Set(), upstreams: new Set() };
      trace.perSocket.set(socket, seen);
    }
    const location = res.getHeader('location');
    seen.uploads.add(req.getMethod() === 'POST' && location !== undefined ? location : req.getURL());
    const upstream = res.getHeader('x-upstream');
    if (upstream !== undefined) seen.upstreams.add(upstream);
  };
  const uploadOne = (result: UploadResult): Promise<void> =>
    new Promise((resolve) => {
      const upload = new Upload(result.data, {
        endpoint: `http://127.0.0.1:${port}/files`,
        chunkSize: CHUNK,
        retryDelays: null,
        uploadDataDuringCreation: false,
        storeFingerprintForResuming: false,
        httpStack,
        metadata: { filename: `file-${results.indexOf(result)}.bin` },
        onAfterResponse,
        onSuccess: () => {
          result.url = upload.url;
          resolve();
        },
        onError: (error) => {
          result.url = upload.url;
          result.error = error;
          resolve();
        },
      });
      upload.start();
    });
  const worker = async (): Promise<void> => {
    while (next < results.length) {
      const result = results[next++]!;
      inFlight++;
      trace.maxInFlight = Math.max(trace.maxInFlight, inFlight);
      await uploadOne(result);
      inFlight--;
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return { results, trace };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function idOf(url: string): string {
  return url.slice(url.lastIndexOf('/') + 1);
}

/** Upload files (not tus's `.json` info files) in a store directory. */
async function storedFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => !f.endsWith('.json'));
}

function makeFiles(): Buffer[] {
  return Array.from({ length: FILES }, () => randomBytes(FILE_BYTES));
}

describe('http mode with tus resumable uploads (@tus/server + tus-js-client)', () => {
  it('learns each upload from its Location header: 12 uploads, 4 in parallel, in 32 KiB chunks, each whole on exactly one upstream', async () => {
    const { upstreams, tether, patchOrder } = await startRig(true);
    const files = makeFiles();
    const { results, trace } = await uploadAll(tether.port, files);

    for (const r of results) expect(r.error?.message ?? null).toBeNull();
    expect(trace.maxInFlight).toBe(PARALLEL);

    const ids = results.map((r) => idOf(r.url!));
    expect(new Set(ids).size).toBe(FILES);
    for (const [i, id] of ids.entries()) {
      // The file is in exactly one store, the one of the upstream that created it,
      // byte for byte; the other stores have never heard of it.
      const holders = upstreams.filter((u) => existsSync(path.join(u.dir, id)));
      expect(holders.map((u) => u.name)).toHaveLength(1);
      const holder = holders[0]!;
      expect(holder.created.has(id)).toBe(true);
      expect(sha256(await readFile(path.join(holder.dir, id)))).toBe(sha256(files[i]!));
      // Every chunk reached the holder as its own PATCH of at most 32 KiB.
      const sizes = holder.patches.get(id)!;
      expect(sizes).toHaveLength(CHUNKS_PER_FILE);
      expect(sizes.slice(0, -1).every((s) => s === CHUNK)).toBe(true);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(FILE_BYTES);
      for (const other of upstreams) if (other !== holder) expect(other.patches.has(id)).toBe(false);
      // The hash would have sent it elsewhere (the ids are chosen so): the pin did it.
      const route = (await adminCall(tether.admin, 'GET', `/route?key=${id}`)).body as { upstream: string; via: string };
      expect(route).toMatchObject({ upstream: holder.name, via: 'learned' });
    }
    // Nothing stray: 12 files across the three stores, no error answers anywhere.
    const stored = await Promise.all(upstreams.map((u) => storedFiles(u.dir)));
    expect(stored.flat().sort()).toEqual([...ids].sort());
    for (const u of upstreams) for (const status of u.statuses.keys()) expect(status).toBeLessThan(300);

    // The uploads really ran side by side: their PATCHes interleave at the upstreams
    // (sequential uploads would switch id only 11 times).
    const switches = patchOrder.filter((id, i) => i > 0 && id !== patchOrder[i - 1]).length;
    expect(switches).toBeGreaterThan(FILES - 1);
    // Keep-alive connections were shared between uploads, and one connection carried
    // requests that tether sent to different upstreams: each request on a connection
    // is routed by its own key (docs/routing.md, rule 7).
    expect(trace.perSocket.size).toBeLessThanOrEqual(CONNECTIONS);
    const perSocket = [...trace.perSocket.values()];
    expect(Math.max(...perSocket.map((s) => s.uploads.size))).toBeGreaterThan(1);
    // p2c spreads the creating POSTs: for all 12 to land on one upstream A, A must win
    // 11 draws while B and C carry none of this test's load, which it does only when
    // drawn first among equals (1/3), so P <= 3^-11 ~ 5.6e-6. With uploads on two
    // upstreams taking turns on every connection, some connection reaches both.
    const used = upstreams.filter((u) => u.created.size > 0);
    expect(used.length).toBeGreaterThan(1);
    expect(Math.max(...perSocket.map((s) => s.upstreams.size))).toBeGreaterThan(1);
  });

  it('has teeth: with TETHER_LEARN unset, the PATCHes follow the hash to an upstream that never heard of the upload, and every upload fails', async () => {
    // Each upload id is chosen so that its hash names another upstream than the one
    // whose POST created it (see keyHashedAwayFrom), so without a learned pin every
    // first PATCH reaches a stranger, which answers 404, and tus-js-client (no
    // retries) gives up. Deterministic: all 12 fail.
    //
    // With random ids instead, an upload survives only when its hash happens to name
    // its creator, about 1/3 of the time (three equal ring shares), so all 12
    // surviving would have a probability of about (1/3)^12 ~ 1.9e-6: the same
    // assertion "at least one fails" would hold nearly always, this one always.
    const { upstreams, tether } = await startRig(false);
    const files = makeFiles();
    const { results } = await uploadAll(tether.port, files);

    for (const r of results) {
      expect(r.error).toBeInstanceOf(DetailedError);
      expect((r.error as DetailedError).originalResponse?.getStatus()).toBe(404);
      // Created (the POST worked) but not one byte stored: the data never reached it.
      expect(r.url).not.toBeNull();
      const id = idOf(r.url!);
      const creator = upstreams.find((u) => u.created.has(id))!;
      expect(creator).toBeDefined();
      const stranger = upstreams.find((u) => u.patches.has(id))!;
      expect(stranger).toBeDefined();
      expect(stranger).not.toBe(creator);
      expect((await readFile(path.join(creator.dir, id))).length).toBe(0);
      const route = (await adminCall(tether.admin, 'GET', `/route?key=${id}`)).body as { upstream: string; via: string };
      expect(route).toMatchObject({ upstream: stranger.name, via: 'hash' });
    }
    expect(upstreams.reduce((n, u) => n + (u.statuses.get(404) ?? 0), 0)).toBe(FILES);
  });
});
