/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam,
 * "Consistent Hashing with Bounded Loads", SODA 2018, arXiv:1608.01350; HAProxy's
 * hash-balance-factor, lb_chash.c chash_server_is_eligible).
 *
 * A key goes to the first member in its hash order that stays within its capacity
 * ceil(c x (total + 1) x weight / totalWeight) after taking the connection, where
 * total counts the active connections before this one. No member then holds more
 * than c times its fair share (rounded up), and a key leaves its own member only
 * while that member is full. For c = 1 + e the paper bounds the keys reassigned by one arrival,
 * departure or membership change at O(1/e^2) in expectation.
 */

/** c is kept to 1/1000 so the capacity test is exact integer arithmetic. */
const FACTOR_SCALE = 1000;

/**
 * Returns the first of order[0..count) within its bound, or, when every one is
 * full (possible only when `order` is cut short, or c < 1: with all members listed
 * and c >= 1 the capacities sum to at least total + 1), the one with the lowest
 * load per weight (the earliest in hash order among equals). -1 when count is 0.
 *
 * For an integer load, load + 1 <= ceil(x) exactly when load < x, and with
 * x = c x (total + 1) x w / W that is load x W x 1000 < round(c x 1000) x (total + 1) x w:
 * integers well below 2^53, so no floating-point rounding can admit one
 * connection too many (HAProxy keeps the factor as an integer percentage likewise).
 */
export function pickBounded(
  order: Uint32Array,
  count: number,
  loads: ArrayLike<number>,
  weights: ArrayLike<number>,
  totalLoad: number,
  totalWeight: number,
  factor: number,
): number {
  const limit = Math.round(factor * FACTOR_SCALE) * (totalLoad + 1);
  const scaledTotalWeight = totalWeight * FACTOR_SCALE;
  let best = -1;
  let bestLoad = 0;
  let bestWeight = 1;
  for (let k = 0; k < count; k++) {
    const i = order[k]!;
    const load = loads[i]!;
    const weight = weights[i]!;
    if (load * scaledTotalWeight < limit * weight) return i;
    // load / weight < bestLoad / bestWeight, without dividing.
    if (best < 0 || load * bestWeight < bestLoad * weight) {
      best = i;
      bestLoad = load;
      bestWeight = weight;
    }
  }
  return best;
}

/**
 * Whether one more connection fits under `member`'s cap: the test pickBounded applies,
 * for callers that try a prefix of the order first and need to know if it found room.
 */
export function underCap(load: number, weight: number, totalLoad: number, totalWeight: number, factor: number): boolean {
  return load * totalWeight * FACTOR_SCALE < Math.round(factor * FACTOR_SCALE) * (totalLoad + 1) * weight;
}
