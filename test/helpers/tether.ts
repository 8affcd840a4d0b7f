import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createBalancer, loadConfig } from '../../src/index.js';
import type { Tether } from '../../src/app/tether.js';
import { createLogger } from '../../src/log.js';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface RunningTether {
  readonly tether: Tether;
  /** Port of the first listener. */
  readonly port: number;
  /** Base URL of the admin API. */
  readonly admin: string;
  close(): Promise<void>;
}

/**
 * Start a balancer in this process from TETHER_* settings (ports 0 by default).
 * With `logs`, log lines are parsed into it (pino's own JSON, as on stdout).
 */
export async function startTether(env: Record<string, string>, logs?: Record<string, unknown>[]): Promise<RunningTether> {
  const config = loadConfig({
    TETHER_LISTEN: '127.0.0.1:0',
    TETHER_ADMIN: '127.0.0.1:0',
    TETHER_LOG_LEVEL: logs ? 'info' : 'silent',
    ...env,
  });
  const sink = logs
    ? new Writable({
        write(chunk: Buffer, _encoding, callback) {
          for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
          callback();
        },
      })
    : undefined;
  const tether = await createBalancer(config, { logger: createLogger(config.logLevel, sink) });
  const runtime = tether.runtime()!;
  return {
    tether,
    port: runtime.listener.port,
    admin: `http://${tether.adminAddress}`,
    close: () => tether.close(),
  };
}

export async function adminCall(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

/** The sum of every series of a metric on /metrics (e.g. tether_connections_total over all labels). */
export async function metricSum(admin: string, name: string, token?: string): Promise<number> {
  const text = String((await adminCall(admin, 'GET', '/metrics', undefined, token)).body);
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

export interface TetherProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Parsed JSON log lines so far (stdout). */
  readonly logs: Record<string, unknown>[];
  stderr: string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Run the real CLI (dist/cli.js) as a child process. `nodeArgs` go to Node itself
 * (e.g. `--inspect=127.0.0.1:0` for collectGarbage in load.ts).
 */
export function spawnTether(env: Record<string, string>, args: string[] = [], nodeArgs: string[] = []): TetherProcess {
  return watchTether(
    spawn(process.execPath, [...nodeArgs, CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', TETHER_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** A tether process started some other way (stdout and stderr piped): its logs, exit and signals. */
export function watchTether(child: ChildProcess): TetherProcess {
  const logs: Record<string, unknown>[] = [];
  const waiters: { predicate: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let pending = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        parsed = { raw: line };
      }
      logs.push(parsed);
      for (const w of [...waiters]) {
        if (w.predicate(parsed)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  });
  const proc: TetherProcess = {
    child,
    pid: child.pid!,
    logs,
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    waitForLog(predicate, timeoutMs = 10_000) {
      const found = logs.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`log line not seen within ${timeoutMs} ms; stderr: ${proc.stderr}`)), timeoutMs);
        waiters.push({ predicate, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
    kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (proc.stderr += chunk));
  return proc;
}

/** The bound "host:port" a spawned tether logged for its first listener and its admin API. */
export async function spawnedAddresses(proc: TetherProcess): Promise<{ port: number; admin: string }> {
  const listening = await proc.waitForLog((l) => l.msg === 'listening');
  const admin = await proc.waitForLog((l) => l.msg === 'admin API listening');
  const port = Number(String(listening.address).split(':').pop());
  return { port, admin: `http://${String(admin.address)}` };
}

/** Resident set size of a process, from /proc (Linux). */
export function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : 0;
}
