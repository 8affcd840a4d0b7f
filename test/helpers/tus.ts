import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { FileStore } from '@tus/file-store';
import { Server as TusServer } from '@tus/server';
import { keyHashedAwayFrom } from './http.js';
import { listenLoopback } from './listen.js';

/**
 * A real tus upstream: @tus/server with its own FileStore directory, minting only
 * upload ids that the balancer at `admin()` would hash to another upstream (so a
 * PATCH can reach its upload only through a learned pin), and recording what it saw.
 */
export interface TusUpstream {
  readonly name: string;
  readonly dir: string;
  readonly port: number;
  /** Upload id -> Content-Length of each PATCH it received, in order. */
  readonly patches: Map<string, number[]>;
  /** Upload ids created here (POST answered 201). */
  readonly created: Set<string>;
  /** Answers by status, for every request. */
  readonly statuses: Map<number, number>;
  close(): Promise<void>;
}

export async function startTusUpstream(name: string, admin: () => string, patchOrder: string[]): Promise<TusUpstream> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `tether-tus-${name}-`));
  const tus = new TusServer({
    path: '/files',
    datastore: new FileStore({ directory: dir }),
    namingFunction: () => keyHashedAwayFrom(name, admin, () => randomBytes(16).toString('hex')),
  });
  const patches = new Map<string, number[]>();
  const created = new Set<string>();
  const statuses = new Map<number, number>();
  const server = http.createServer((req, res) => {
    const id = /^\/files\/([^/?]+)/.exec(req.url ?? '')?.[1];
    if (req.method === 'PATCH' && id !== undefined) {
      patchOrder.push(id);
      const sizes = patches.get(id) ?? [];
      sizes.push(Number(req.headers['content-length']));
      patches.set(id, sizes);
    }
    res.on('finish', () => {
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (req.method === 'POST' && res.statusCode === 201) {
        const location = String(res.getHeader('location') ?? '');
        created.add(location.slice(location.lastIndexOf('/') + 1));
      }
    });
    // Lets the client see which upstream answered each request.
    res.setHeader('x-upstream', name);
    void tus.handle(req, res);
  });
  const port = await listenLoopback(server);
  return {
    name,
    dir,
    port,
    patches,
    created,
    statuses,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
