import { buildTable } from '../balancer/index.js';
import { hashKey } from '../balancer/hash.js';
import { pickBounded, underCap } from '../balancer/bounded.js';
import { pickTwoChoices } from '../balancer/p2c.js';
import type { Algorithm, LookupTable } from '../balancer/types.js';
import type { UpstreamSpec } from '../config/types.js';
import { UnknownUpstreamError } from '../errors.js';
import { Upstream, type UpstreamState } from './upstream.js';

export type RouteVia = 'learned' | 'hash' | 'p2c';

export interface RouteDecision {
  readonly via: RouteVia;
  /** Upstreams to try in order: the choice first, then the next in hash order. */
  readonly candidates: Upstream[];
}

export interface PoolOptions {
  readonly algorithm: Algorithm;
  readonly vnodes: number;
  /** 0 = off; else c > 1 (bounded loads). */
  readonly balanceFactor: number;
}

export interface MembershipEvent {
  readonly upstream: string;
  readonly change: 'added' | 'removed' | 'changed' | 'up' | 'down' | 'draining' | 'undrained';
  readonly detail?: string;
}

type ChangeListener = (event: MembershipEvent) => void;

/** How much of the hash order bounded loads looks at before walking all of it. */
const BOUNDED_PREFIX = 8;

/**
 * The upstreams of one listener and the lookup table over the routable ones.
 * The table is an immutable snapshot swapped whole on every membership change;
 * routing reads `table` and `routable` together, which always belong to one build.
 */
export class UpstreamPool {
  #options: PoolOptions;
  readonly #byName = new Map<string, Upstream>();
  #routable: Upstream[] = [];
  #table: LookupTable;
  /** Active connections per routable slot, kept in step with Upstream.active for pickers. */
  #loads = new Float64Array(0);
  #weights = new Float64Array(0);
  #routableActive = 0;
  #routableWeight = 0;
  #order = new Uint32Array(0);
  #prefix = new Uint32Array(BOUNDED_PREFIX);
  readonly #listeners: ChangeListener[] = [];
  readonly #onTableBuilt: ((seconds: number) => void) | undefined;

  /** `onTableBuilt` hears how long each table build took (tether_ring_build_seconds). */
  constructor(options: PoolOptions, specs: readonly UpstreamSpec[] = [], onTableBuilt?: (seconds: number) => void) {
    this.#options = options;
    this.#onTableBuilt = onTableBuilt;
    for (const spec of specs) {
      this.#byName.set(spec.name, new Upstream(spec.name, spec.host, spec.port, spec.weight));
    }
    this.#table = this.#build();
  }

  get options(): PoolOptions {
    return this.#options;
  }

  get table(): LookupTable {
    return this.#table;
  }

  onChange(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  list(): Upstream[] {
    return [...this.#byName.values()];
  }

  get(name: string): Upstream | undefined {
    return this.#byName.get(name);
  }

  /** Upstreams that are up (draining included): the readiness signal. */
  upCount(): number {
    let n = 0;
    for (const u of this.#byName.values()) if (u.healthy) n++;
    return n;
  }

  setOptions(options: PoolOptions): void {
    const old = this.#options;
    this.#options = options;
    if (old.algorithm !== options.algorithm || old.vnodes !== options.vnodes) this.#rebuild();
  }

  /** Make the membership equal `specs` (start-up and reload): adds, changes, removes. */
  setUpstreams(specs: readonly UpstreamSpec[]): void {
    const wanted = new Set<string>();
    for (const spec of specs) {
      wanted.add(spec.name);
      this.#upsert(spec.name, spec.host, spec.port, spec.weight);
    }
    for (const name of [...this.#byName.keys()]) if (!wanted.has(name)) this.#remove(name);
    this.#rebuild();
  }

  /** Add or change one upstream (admin PUT). Returns whether it was new. */
  put(name: string, host: string, port: number, weight?: number): boolean {
    const created = this.#upsert(name, host, port, weight ?? this.#byName.get(name)?.weight ?? 1);
    this.#rebuild();
    return created;
  }

  remove(name: string): Upstream {
    const upstream = this.#remove(name);
    this.#rebuild();
    return upstream;
  }

  setHealth(name: string, up: boolean, reason: string): void {
    const upstream = this.#byName.get(name);
    if (!upstream || upstream.healthy === up) return;
    upstream.healthy = up;
    this.#emit({ upstream: name, change: up ? 'up' : 'down', detail: reason });
    this.#rebuild();
  }

  drain(name: string, deadlineS?: number): Upstream {
    const upstream = this.#require(name);
    if (upstream.drainTimer) clearTimeout(upstream.drainTimer);
    upstream.drainTimer = null;
    if (deadlineS !== undefined) {
      upstream.drainTimer = setTimeout(closeAll, deadlineS * 1000, upstream, 'drain deadline');
      upstream.drainTimer.unref();
    }
    if (!upstream.draining) {
      upstream.draining = true;
      this.#emit({ upstream: name, change: 'draining', detail: deadlineS === undefined ? undefined : `deadline ${deadlineS}s` });
      this.#rebuild();
    }
    return upstream;
  }

  undrain(name: string): Upstream {
    const upstream = this.#require(name);
    if (upstream.drainTimer) clearTimeout(upstream.drainTimer);
    upstream.drainTimer = null;
    if (upstream.draining) {
      upstream.draining = false;
      this.#emit({ upstream: name, change: 'undrained' });
      this.#rebuild();
    }
    return upstream;
  }

  /** Where a key goes now by hash (no pins), or p2c when key is null. */
  route(key: string | null, maxCandidates: number): RouteDecision {
    const routable = this.#routable;
    if (routable.length === 0) return { via: key === null ? 'p2c' : 'hash', candidates: [] };
    if (key === null) return { via: 'p2c', candidates: this.#twoChoices(maxCandidates) };
    return { via: 'hash', candidates: this.#hashOrder(hashKey(key), maxCandidates) };
  }

  /** Count a connection routed to `upstream` (keeps the pickers' load view in step). */
  acquire(upstream: Upstream): void {
    upstream.active++;
    upstream.total++;
    if (upstream.slot >= 0 && this.#routable[upstream.slot] === upstream) {
      this.#loads[upstream.slot]++;
      this.#routableActive++;
    }
  }

  release(upstream: Upstream): void {
    upstream.active--;
    if (upstream.slot >= 0 && this.#routable[upstream.slot] === upstream) {
      this.#loads[upstream.slot]--;
      this.#routableActive--;
    }
  }

  #hashOrder(hash: number, maxCandidates: number): Upstream[] {
    const routable = this.#routable;
    const size = routable.length;
    const factor = this.#options.balanceFactor;
    if (this.#order.length < size) this.#order = new Uint32Array(size);
    if (this.#prefix.length < maxCandidates) this.#prefix = new Uint32Array(Math.max(maxCandidates, BOUNDED_PREFIX));
    // A short prefix of the hash order serves retries and, nearly always, bounded
    // loads; the whole order (O(N) for some tables) only when none of it has room.
    let order = this.#prefix;
    let count = this.#table.order(hash, order);
    let chosen = order[0]!;
    if (factor > 1) {
      chosen = pickBounded(order, count, this.#loads, this.#weights, this.#routableActive, this.#routableWeight, factor);
      if (count < size && !underCap(this.#loads[chosen]!, this.#weights[chosen]!, this.#routableActive, this.#routableWeight, factor)) {
        order = this.#order;
        count = this.#table.order(hash, order);
        chosen = pickBounded(order, count, this.#loads, this.#weights, this.#routableActive, this.#routableWeight, factor);
      }
    }
    const out: Upstream[] = [routable[chosen]!];
    for (let i = 0; i < count && out.length < maxCandidates; i++) {
      if (order[i] !== chosen) out.push(routable[order[i]!]!);
    }
    return out;
  }

  #twoChoices(maxCandidates: number): Upstream[] {
    const routable = this.#routable;
    const chosen = pickTwoChoices(routable.length, this.#loads, this.#weights);
    const out = [routable[chosen]!];
    if (maxCandidates > 1) {
      // Fallbacks for a failed connect: the least loaded of the rest.
      const rest = routable.filter((u) => u !== out[0]).sort((a, b) => a.active / a.weight - b.active / b.weight);
      for (const u of rest) {
        if (out.length >= maxCandidates) break;
        out.push(u);
      }
    }
    return out;
  }

  #upsert(name: string, host: string, port: number, weight: number): boolean {
    const existing = this.#byName.get(name);
    if (!existing) {
      this.#byName.set(name, new Upstream(name, host, port, weight));
      this.#emit({ upstream: name, change: 'added', detail: `${host}:${port}*${weight}` });
      return true;
    }
    if (existing.host !== host || existing.port !== port || existing.weight !== weight) {
      existing.host = host;
      existing.port = port;
      existing.weight = weight;
      this.#emit({ upstream: name, change: 'changed', detail: `${existing.address}*${weight}` });
    }
    return false;
  }

  #remove(name: string): Upstream {
    const upstream = this.#require(name);
    this.#byName.delete(name);
    upstream.removed = true;
    if (upstream.drainTimer) clearTimeout(upstream.drainTimer);
    upstream.drainTimer = null;
    this.#emit({ upstream: name, change: 'removed' });
    return upstream;
  }

  #require(name: string): Upstream {
    const upstream = this.#byName.get(name);
    if (!upstream) throw new UnknownUpstreamError(name);
    return upstream;
  }

  #rebuild(): void {
    this.#table = this.#build();
  }

  #build(): LookupTable {
    for (const u of this.#routable) u.slot = -1;
    const routable = [...this.#byName.values()].filter((u) => u.routable);
    routable.sort(byName);
    const loads = new Float64Array(routable.length);
    const weights = new Float64Array(routable.length);
    let active = 0;
    let weight = 0;
    for (let i = 0; i < routable.length; i++) {
      const u = routable[i]!;
      u.slot = i;
      loads[i] = u.active;
      weights[i] = u.weight;
      active += u.active;
      weight += u.weight;
    }
    const started = performance.now();
    const table = buildTable(
      this.#options.algorithm,
      routable.map((u) => ({ name: u.name, weight: u.weight })),
      { vnodes: this.#options.vnodes },
    );
    this.#onTableBuilt?.((performance.now() - started) / 1000);
    this.#routable = routable;
    this.#loads = loads;
    this.#weights = weights;
    this.#routableActive = active;
    this.#routableWeight = weight;
    return table;
  }

  #emit(event: MembershipEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

function byName(a: Upstream, b: Upstream): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function closeAll(upstream: Upstream, reason: string): void {
  for (const session of [...upstream.sessions]) session.close(reason);
}

export type { UpstreamState };
