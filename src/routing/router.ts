import type { UpstreamPool } from './pool.js';
import type { RouteDecision } from './types.js';
import type { Upstream } from './upstream.js';
import type { CachedPins, ImmediatePins, PinStore } from '../store/types.js';
import type { ListenerConfig } from '../config/types.js';

/** Whether a listener has pins to consult: http learn rules, or TETHER_STICK. */
export function learns(config: ListenerConfig): boolean {
  return config.stick || (config.mode === 'http' && config.learn.length > 0);
}

/**
 * Where a key goes, learned pins first (docs/routing.md, rules 2-3): a pin whose upstream
 * still exists and is up wins (draining counts as up, so uploads already there can
 * finish); a pin to an upstream that is gone or down is dropped and the key is hashed.
 * The pinned upstream is followed by the key's hash order, so a failed connect still
 * has somewhere to go.
 */
export async function routeWithPins(
  pool: UpstreamPool,
  pins: PinStore,
  key: string,
  maxCandidates: number,
  ttlS: number,
): Promise<RouteDecision> {
  const name = await pins.get(key);
  if (name !== null) {
    const decision = pinnedRoute(pool, name, key, maxCandidates);
    if (decision !== null) {
      void pins.touch(key, ttlS);
      return decision;
    }
    void pins.delete(key);
  }
  return pool.route(key, maxCandidates);
}

/** routeWithPins for pins that answer at once (the memory store): no promise, same rules. */
export function routeWithPinsNow(
  pool: UpstreamPool,
  pins: ImmediatePins,
  key: string,
  maxCandidates: number,
  ttlS: number,
): RouteDecision {
  const name = pins.getNow(key);
  if (name !== null) {
    const decision = pinnedRoute(pool, name, key, maxCandidates);
    if (decision !== null) {
      pins.touchNow(key, ttlS);
      return decision;
    }
    pins.deleteNow(key);
  }
  return pool.route(key, maxCandidates);
}

/**
 * A pin this process holds a copy of, used at once (renewed in the background); null
 * when there is none here, or its upstream is gone or down: routeWithPins decides then.
 */
export function routeByCachedPin(pool: UpstreamPool, pins: CachedPins, key: string, maxCandidates: number, ttlS: number): RouteDecision | null {
  const name = pins.cached(key);
  if (name === null) return null;
  const decision = pinnedRoute(pool, name, key, maxCandidates);
  if (decision !== null) pins.renew(key, ttlS);
  return decision;
}

/** The pinned upstream first, then the key's hash order; null when the pin's upstream is gone or down. */
function pinnedRoute(pool: UpstreamPool, name: string, key: string, maxCandidates: number): RouteDecision | null {
  const pinned = pool.get(name);
  if (pinned === undefined || !pinned.pinnable) return null;
  return { via: 'learned', candidates: withFallbacks(pinned, pool.route(key, maxCandidates).candidates, maxCandidates) };
}

function withFallbacks(first: Upstream, order: readonly Upstream[], maxCandidates: number): Upstream[] {
  const out = [first];
  for (const u of order) {
    if (out.length >= maxCandidates) break;
    if (u !== first) out.push(u);
  }
  return out;
}
