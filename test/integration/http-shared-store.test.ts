import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { DefaultHttpStack, Upload, type HttpRequest } from 'tus-js-client';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/clients.js';
import { Cleanups, get, RawClient, startHttpUpstream } from '../helpers/http.js';
import { spawnInstance, type Instance } from '../helpers/instances.js';
import { startRedis } from '../helpers/redis.js';
import { adminCall, startTether } from '../helpers/tether.js';
import { startTusUpstream } from '../helpers/tus.js';

/**
 * http mode with TETHER_STORE=redis: several tether processes share learned pins, so
 * a client whose next connection reaches another instance still lands on the
 * upstream that holds its state.
 */

const cleanups = new Cleanups();
afterEach(() => cleanups.runAll());

async function instance(env: Record<string, string>): Promise<Instance> {
  const started = await spawnInstance({ TETHER_MODE: 'http', TETHER_ACCESS_LOG: 'on', ...env });
  cleanups.register(() => started.stop());
  return started;
}

describe('http mode with a shared Redis store', () => {
  it('a tus upload created through instance A is continued chunk by chunk through instance B', async () => {
    const redis = await startRedis();
    cleanups.register(() => redis.stop());
    let adminA = '';
    const upstreams = await Promise.all(['tus-a', 'tus-b', 'tus-c'].map((n) => startTusUpstream(n, () => adminA, [])));
    for (const u of upstreams) cleanups.register(() => u.close());
    const env = {
      TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=127.0.0.1:${u.port}`).join(','),
      TETHER_STORE: redis.url,
      TETHER_KEY: 'path:^/files/([^/?]+)',
      TETHER_LEARN: 'header:location=/files/([^/?]+)',
    };
    const a = await instance(env);
    adminA = a.admin;
    const b = await instance(env);

    const agent = new http.Agent({ keepAlive: true });
    cleanups.register(async () => agent.destroy());
    // The client creates the upload at A; every later request (HEAD, PATCH) goes to
    // B, as if its next connection had reached another instance.
    const stack = new DefaultHttpStack({ agent });
    const toB = {
      createRequest: (method: string, url: string): HttpRequest =>
        stack.createRequest(method, method === 'POST' ? url : url.replace(`:${a.port}/`, `:${b.port}/`)),
      getName: () => 'to-instance-b',
    };
    const data = randomBytes(300 * 1024);
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new Upload(data, {
        endpoint: `http://127.0.0.1:${a.port}/files`,
        chunkSize: 32 * 1024,
        retryDelays: null,
        uploadDataDuringCreation: false,
        storeFingerprintForResuming: false,
        httpStack: toB,
        onSuccess: () => resolve(upload.url!),
        onError: reject,
      });
      upload.start();
    });
    const id = url.slice(url.lastIndexOf('/') + 1);
    // The file is whole on exactly one upstream: the one that created it.
    const holders: string[] = [];
    for (const u of upstreams) {
      const files = await readdir(u.dir);
      if (!files.includes(id)) continue;
      const content = await readFile(path.join(u.dir, id));
      expect(createHash('sha256').update(content).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      holders.push(u.name);
    }
    expect(holders).toEqual([...upstreams.filter((u) => u.created.has(id)).map((u) => u.name)]);
    // Every PATCH went through B, by the pin A learned. An access line is written when
    // its request ends and reaches this process through B's stdout after the client
    // has its answer: wait for the tenth (the count is asserted below either way).
    const patchLines = (): typeof b.proc.logs => b.proc.logs.filter((l) => l.component === 'access' && l.method === 'PATCH');
    await waitFor(() => patchLines().length >= 10, 5_000, "B's ten PATCH access lines").catch(() => undefined);
    const patches = patchLines();
    expect(patches).toHaveLength(10);
    expect(new Set(patches.map((l) => `${l.via}:${l.upstream}`))).toEqual(new Set([`learned:${holders[0]}`]));
    expect(a.proc.logs.filter((l) => l.component === 'access' && l.method === 'PATCH')).toHaveLength(0);
  }, 60_000);

  it('routes by hash while Redis is down, and shares pins learned after it returns', async () => {
    const redis = await startRedis();
    cleanups.register(() => redis.stop());
    const upstreams = await Promise.all(['a', 'b', 'c'].map((n) => startHttpUpstream(n)));
    for (const u of upstreams) cleanups.register(() => u.close());
    const env = {
      TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','),
      TETHER_STORE: redis.url,
      TETHER_KEY: 'path:^/files/([^/?]+)',
      TETHER_LEARN: 'header:x-upload=(.+)',
    };
    const a = await instance(env);
    const b = await instance(env);

    /** Learn a key through A on an upstream it does not hash to; returns [key, upstream]. */
    const learnThroughA = async (): Promise<[string, string]> => {
      const c = new RawClient(a.port);
      try {
        for (;;) {
          const key = randomBytes(8).toString('hex');
          const hashed = ((await adminCall(b.admin, 'GET', `/route?key=${key}`)).body as { upstream: string }).upstream;
          c.write(`POST /create?id=${key} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n`);
          const res = (await c.response())!;
          expect(res.status).toBe(200);
          if (res.headers['x-upstream'] !== hashed) return [key, res.headers['x-upstream']!];
        }
      } finally {
        c.destroy();
      }
    };
    const onB = async (key: string): Promise<string> => {
      const c = new RawClient(b.port);
      try {
        c.write(get(`/files/${key}`));
        return (await c.response(5000))!.headers['x-upstream']!;
      } finally {
        c.destroy();
      }
    };

    const [before, beforeOwner] = await learnThroughA();
    expect(await onB(before)).toBe(beforeOwner);

    await redis.kill();
    // Every new connection through A still succeeds, none waits long on the store.
    let slowest = 0;
    for (let i = 0; i < 100; i++) {
      const started = Date.now();
      const c = new RawClient(a.port);
      c.write(get(`/files/outage-${i}`));
      const res = await c.response(5000);
      c.destroy();
      expect(res?.status).toBe(200);
      slowest = Math.max(slowest, Date.now() - started);
    }
    expect(slowest).toBeLessThan(500);
    expect((await adminCall(a.admin, 'GET', '/readyz')).status).toBe(200);

    await redis.restart();
    // Pins are written again once both instances have reconnected.
    await waitFor(
      async () => {
        const [key, owner] = await learnThroughA();
        return (await onB(key)) === owner;
      },
      20_000,
      'a pin learned through A after the restart to reach B',
      200,
    );
    const [after, afterOwner] = await learnThroughA();
    expect(await onB(after)).toBe(afterOwner);
    const route = (await adminCall(b.admin, 'GET', `/route?key=${after}`)).body as { via: string; upstream: string };
    expect(route).toMatchObject({ via: 'learned', upstream: afterOwner });
    const metrics = (await adminCall(a.admin, 'GET', '/metrics')).body as string;
    expect(Number(/tether_store_errors_total (\d+)/.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
  }, 90_000);
});

describe('http mode: a client that hangs up while its route waits on the store', () => {
  it('leaves no request, upgrade or upstream connection behind, whether it sent a FIN or a reset', async () => {
    // Found by reading, next to a fault the HTTP head fuzz found (pipelined requests
    // left in flight): an upgrade whose client sent a FIN while its pin lookup waited
    // on the store never passed the FIN on, so it stayed open until the idle timeout;
    // one whose client reset was connected upstream anyway once the lookup returned,
    // and that upstream's load was never released.
    const redis = await startRedis();
    cleanups.register(() => redis.stop());
    const upstreams = await Promise.all(['a', 'b'].map((n) => startHttpUpstream(n)));
    for (const u of upstreams) cleanups.register(() => u.close());
    const t = await startTether({
      TETHER_MODE: 'http',
      TETHER_UPSTREAMS: upstreams.map((u) => `${u.name}=${u.address}`).join(','),
      TETHER_HEALTH: 'off',
      TETHER_STORE: redis.url,
      TETHER_STORE_TIMEOUT_MS: '400',
      TETHER_KEY: 'header:x-key',
      TETHER_LEARN: 'set-cookie:sid',
    });
    cleanups.register(() => t.close());
    const listener = t.tether.runtime()!.listener as unknown as { inFlight: number; sessions: Set<unknown> };
    // Every pin lookup now waits TETHER_STORE_TIMEOUT_MS, then routes by hash.
    redis.pause();
    cleanups.register(async () => redis.resume());
    const upgrade =
      'GET /ws HTTP/1.1\r\nHost: t\r\nX-Key: k-up\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    for (const hangUp of ['FIN', 'reset'] as const) {
      for (const head of [upgrade, get('/plain', { 'x-key': 'k-plain' })]) {
        const c = new RawClient(t.port);
        c.write(head);
        await waitFor(() => listener.sessions.size + listener.inFlight > 0, 5_000, 'the request to be read');
        if (hangUp === 'FIN') c.destroy();
        else c.socket.resetAndDestroy();
        await waitFor(() => listener.sessions.size + listener.inFlight === 0, 5_000, `nothing in flight after a ${hangUp}`);
        const list = (await adminCall(t.admin, 'GET', '/upstreams')).body as { active: number }[];
        expect(list.map((u) => u.active), `after a ${hangUp}`).toEqual([0, 0]);
      }
    }
  });
});
