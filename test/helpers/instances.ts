/**
 * Several real tether processes (the CLI) sharing one store, as several balancer
 * instances behind DNS or ECMP would.
 */
import { adminCall, spawnTether, spawnedAddresses, type TetherProcess } from './tether.js';

export interface Instance {
  readonly proc: TetherProcess;
  /** Port of the first listener. */
  readonly port: number;
  /** Base URL of the admin API. */
  readonly admin: string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

/** Start one instance; ports 0, health checks off unless `env` says otherwise. */
export async function spawnInstance(env: Record<string, string>): Promise<Instance> {
  const proc = spawnTether({
    TETHER_LISTEN: '127.0.0.1:0',
    TETHER_ADMIN: '127.0.0.1:0',
    TETHER_HEALTH: 'off',
    TETHER_ACCESS_LOG: 'off',
    ...env,
  });
  try {
    const { port, admin } = await spawnedAddresses(proc);
    return {
      proc,
      port,
      admin,
      stop: async () => {
        proc.kill('SIGTERM');
        await proc.exited;
      },
    };
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`tether did not start: ${err instanceof Error ? err.message : String(err)}; stderr: ${proc.stderr}`);
  }
}

/** `count` instances with the same settings (e.g. TETHER_STORE=redis://...). */
export function spawnInstances(count: number, env: Record<string, string>): Promise<Instance[]> {
  return Promise.all(Array.from({ length: count }, () => spawnInstance(env)));
}

export interface UpstreamView {
  readonly name: string;
  readonly address: string;
  readonly weight: number;
  readonly state: string;
}

/** GET /upstreams as `name@address*weight:state`, sorted: easy to compare between instances. */
export async function membershipOf(admin: string): Promise<string[]> {
  const { status, body } = await adminCall(admin, 'GET', '/upstreams');
  if (status !== 200) throw new Error(`GET /upstreams answered ${status}`);
  return (body as UpstreamView[]).map((u) => `${u.name}@${u.address}*${u.weight}:${u.state}`).sort();
}

/** GET /route for every key: key -> "upstream|candidate,candidate,...". */
export async function routesOf(admin: string, keys: readonly string[], concurrency = 16): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      const { status, body } = await adminCall(admin, 'GET', `/route?key=${encodeURIComponent(key)}`);
      if (status !== 200) throw new Error(`GET /route answered ${status}`);
      const answer = body as { upstream: string | null; candidates: string[] };
      out.set(key, `${answer.upstream}|${answer.candidates.join(',')}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

/**
 * Poll `predicate` until true; resolves the milliseconds it took. Throws after
 * `timeoutMs`, a generous ceiling: callers assert their own bound on the result.
 */
export async function timeUntil(predicate: () => Promise<boolean>, timeoutMs = 15_000, what = 'the condition'): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await predicate()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Each admin's routes for `keys`, read until all agree or `timeoutMs` passes. An
 * instance that has just applied a change heard from another builds its new table in
 * a worker thread, so its routes may trail its membership by a few milliseconds.
 */
export async function routesAlike(admins: readonly string[], keys: readonly string[], timeoutMs = 5_000): Promise<Map<string, string>[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = await Promise.all(admins.map((admin) => routesOf(admin, keys)));
    const text = all.map((m) => JSON.stringify([...m]));
    if (text.every((t) => t === text[0]) || Date.now() > deadline) return all;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A row of GET /workers. */
export interface WorkerRow {
  readonly id: number;
  readonly pid: number;
  readonly state: string;
  readonly active: number;
  readonly total: number;
}

/** GET /workers: the workers by id, then the standby (id 0) once it is forked. */
export async function workersOf(admin: string): Promise<WorkerRow[]> {
  const { status, body } = await adminCall(admin, 'GET', '/workers');
  if (status !== 200) throw new Error(`GET /workers answered ${status}`);
  return body as WorkerRow[];
}
