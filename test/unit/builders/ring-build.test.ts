import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTableData, tableBuffers, tableFromData } from '../../../src/hashing/tables.js';
import type { Algorithm, Member, TableData } from '../../../src/hashing/types.js';
import { TetherError } from '../../../src/errors.js';
import { InlineTableBuilder } from '../../../src/builders/inline.js';
import { WorkerTableBuilder, ringBuildWorkerFile } from '../../../src/builders/worker.js';
import { createTableBuilder } from '../../../src/builders/create.js';
import { sequentialKeys } from '../hashing/helpers.js';

const ALGORITHMS: readonly Algorithm[] = ['ring', 'maglev', 'rendezvous', 'modulo'];
const members = (n: number, prefix = 'up-'): Member[] => Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, weight: 1 + (i % 3) }));

const builder = new WorkerTableBuilder(2);
afterAll(() => builder.close());

describe('ring builds in worker threads', () => {
  it('loads the compiled task from dist/ when running from the TypeScript sources', () => {
    expect(ringBuildWorkerFile()).toBe(fileURLToPath(new URL('../../../dist/builders/ring-build-thread.cjs', import.meta.url)));
  });

  it('gives piscina a task file its require() loads without loading an ES module synchronously', () => {
    // Node 20 aborts the process when a thread stopped mid-load was inside require(esm) (ring-build-thread.cts).
    const loaded = spawnSync(process.execPath, ['--no-experimental-require-module', '-e', `require(${JSON.stringify(ringBuildWorkerFile())})`], { encoding: 'utf8' });
    expect(loaded.stderr).toBe('');
    expect(loaded.status).toBe(0);
  });

  it('builds byte for byte what a build on this thread builds, for every algorithm', async () => {
    const list = members(700);
    const keys = sequentialKeys(5000);
    for (const algorithm of ALGORITHMS) {
      const built = await builder.build({ algorithm, members: list, options: { vnodes: 160 } });
      const local = buildTableData(algorithm, list, { vnodes: 160 });
      expect(built.data, algorithm).toEqual(local);
      expect(built.seconds).toBeGreaterThan(0);
      const a = tableFromData(built.data);
      const b = tableFromData(local);
      for (const h of keys) expect(a.primary(h)).toBe(b.primary(h));
    }
  });

  it('runs builds on several threads at once', async () => {
    expect(builder.threads).toBe(2);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => builder.build({ algorithm: 'maglev', members: members(50 + i), options: { vnodes: 1 } })),
    );
    results.forEach((r, i) => expect(r.data.members).toHaveLength(50 + i));
  });

  it('returns a refused build as a TetherError with its code, not a plain Error', async () => {
    const heavy = ['a', 'b', 'c', 'd'].map((name) => ({ name, weight: 256 }));
    const failure = await builder.build({ algorithm: 'ring', members: heavy, options: { vnodes: 10_000 } }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TetherError);
    expect((failure as TetherError).code).toBe('TETHER_ERR_CONFIG');
    expect((failure as TetherError).message).toBe('options.vnodes x total weight must be at most 8388608 (got 10000 x 1024)');
  });

  it('lists every table buffer once for the transfer, and moves them (the sender keeps nothing)', () => {
    for (const algorithm of ALGORITHMS) {
      const data = buildTableData(algorithm, members(20), { vnodes: 4 });
      const buffers = tableBuffers(data);
      expect(new Set(buffers).size).toBe(buffers.length);
      const { port1, port2 } = new MessageChannel();
      port1.postMessage(data, buffers);
      // Transferred, not copied: the sending side's arrays are now detached.
      for (const b of buffers) expect(b.byteLength, algorithm).toBe(0);
      port1.close();
      port2.close();
    }
  });

  it('survives a build thread that cannot load: builds reject with TETHER_ERR_RING_BUILD, the error is reported, the process lives on', async () => {
    const dir = mkdtempSync(join(os.tmpdir(), 'tether-broken-worker-'));
    const file = join(dir, 'broken.mjs');
    writeFileSync(file, "throw new Error('broken task file');\n");
    const reported: Error[] = [];
    // Without a listener on piscina's 'error' event this thread-level failure ends the process.
    const broken = new WorkerTableBuilder(1, { filename: file, onThreadError: (err) => reported.push(err) });
    try {
      for (let i = 0; i < 3; i++) {
        const failure = await broken.build({ algorithm: 'ring', members: members(5), options: { vnodes: 10 } }).catch((e: unknown) => e);
        expect(failure).toBeInstanceOf(TetherError);
        expect((failure as TetherError).code).toBe('TETHER_ERR_RING_BUILD');
        expect((failure as TetherError).message).toMatch(/broken task file/);
      }
      // A good builder in the same process still works.
      const ok = await builder.build({ algorithm: 'ring', members: members(5), options: { vnodes: 10 } });
      expect(ok.data.members).toHaveLength(5);
    } finally {
      await broken.close();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(reported.length).toBeGreaterThan(0);
    expect(reported[0]!.message).toMatch(/broken task file/);
  });

  it('rejects builds after close with TETHER_ERR_RING_BUILD', async () => {
    const short = new WorkerTableBuilder(1);
    await short.close();
    const failure = await short.build({ algorithm: 'ring', members: members(3), options: { vnodes: 10 } }).catch((e: unknown) => e);
    expect((failure as TetherError).code).toBe('TETHER_ERR_RING_BUILD');
    await short.close();
  });

  it('derives a keyed ring from the last one its thread built, equal to a local full build, recycled buffers and all', async () => {
    const single = new WorkerTableBuilder(1);
    try {
      const options = { vnodes: 160 };
      const all = members(300);
      const steps: { list: Member[]; incremental: boolean }[] = [
        { list: all, incremental: false }, // first of its series
        { list: all.slice(1), incremental: true }, // a drain: every index moves down
        { list: all, incremental: true }, // undrained
        { list: all.map((m, i) => (i === 7 ? { name: m.name, weight: 3 } : m)), incremental: true }, // reweighted
        { list: [...members(100), ...members(250, 'new-')], incremental: false }, // most of it replaced
        { list: members(100), incremental: true }, // the new ones gone again
      ];
      // As the pool does: the table replaced last goes back as spare buffers.
      let retired: TableData | null = null;
      let current: TableData | null = null;
      for (const [i, step] of steps.entries()) {
        const spare = retired === null ? [] : tableBuffers(retired);
        const built = await single.build({ algorithm: 'ring', members: step.list, options, key: 'listener-a', spare });
        expect(built.incremental, `step ${i}`).toBe(step.incremental);
        expect(built.data, `step ${i}`).toEqual(buildTableData('ring', step.list, options));
        retired = current;
        current = built.data;
      }
      // Another series, or no key, starts whole; Maglev is always whole.
      expect((await single.build({ algorithm: 'ring', members: members(101), options, key: 'listener-b' })).incremental).toBe(false);
      expect((await single.build({ algorithm: 'ring', members: members(102), options })).incremental).toBe(false);
      expect((await single.build({ algorithm: 'maglev', members: members(103), options, key: 'listener-c' })).incremental).toBe(false);
      expect((await single.build({ algorithm: 'maglev', members: members(104), options, key: 'listener-c' })).incremental).toBe(false);
    } finally {
      await single.close();
    }
  });

  it('sends a series\' member list whole to a thread that lacks the list the edit was made against, and still builds exactly', async () => {
    const two = new WorkerTableBuilder(2);
    try {
      const options = { vnodes: 160 };
      let list = members(300);
      await two.build({ algorithm: 'ring', members: list, options, key: 'a' });
      expect(two.resent).toBe(0);
      for (let i = 0; i < 8; i++) {
        list = i % 2 === 0 ? list.slice(1) : [...list, { name: `x-${i}`, weight: 2 }];
        // A long build of another series holds a thread: series a's next build may
        // land on the other one, which never saw its list.
        const other = two.build({ algorithm: 'maglev', members: members(2000, 'big-'), options: { vnodes: 1 } });
        const built = await two.build({ algorithm: 'ring', members: list, options, key: 'a' });
        await other;
        expect(built.data, `step ${i}`).toEqual(buildTableData('ring', list, options));
      }
      // The first such build was sent twice; the thread that got it keeps the series.
      expect(two.resent).toBeGreaterThan(0);
    } finally {
      await two.close();
    }
  });

  it('TETHER_RING_THREADS=0 derives keyed rings inline too, equal to a full build', async () => {
    const inline = new InlineTableBuilder();
    const options = { vnodes: 160 };
    const first = await inline.build({ algorithm: 'ring', members: members(200), options, key: 'k' });
    const next = await inline.build({ algorithm: 'ring', members: members(201), options, key: 'k' });
    expect([first.incremental, next.incremental]).toEqual([false, true]);
    expect(next.data).toEqual(buildTableData('ring', members(201), options));
    await inline.close();
  });

  it('TETHER_RING_THREADS=0 builds inline, with the same result', async () => {
    const inline = createTableBuilder(0);
    expect(inline).toBeInstanceOf(InlineTableBuilder);
    expect(createTableBuilder(1).kind).toBe('workers');
    const built = await inline.build({ algorithm: 'ring', members: members(30), options: { vnodes: 160 } });
    expect(built.data).toEqual(buildTableData('ring', members(30), { vnodes: 160 }));
    await inline.close();
  });
});
