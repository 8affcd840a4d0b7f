/**
 * The power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized
 * Load Balancing", IEEE TPDS 2001; Azar, Broder, Karlin and Upfal, STOC 1994), for
 * connections that carry no key. Sampling two members and taking the less loaded
 * cuts the fullest member's excess from Theta(log n / log log n) to
 * log log n / log 2 + O(1), and, unlike "least connections", spreads a burst of
 * simultaneous arrivals instead of sending them all to one momentary minimum
 * (Envoy's LEAST_REQUEST and nginx's "random two least_conn" use it likewise).
 */

/**
 * Two distinct random members; the one with the lower load / weight wins (the
 * first drawn among equals). `random` must return values in [0, 1), as Math.random
 * does. Returns -1 when size is 0.
 */
export function pickTwoChoices(
  size: number,
  loads: ArrayLike<number>,
  weights: ArrayLike<number>,
  random: () => number = Math.random,
): number {
  if (size <= 1) return size === 1 ? 0 : -1;
  const a = Math.floor(random() * size);
  // Draw b from the other size - 1 members: uniform, distinct, no retry loop.
  let b = Math.floor(random() * (size - 1));
  if (b >= a) b++;
  // loads[b] / weights[b] < loads[a] / weights[a], without dividing.
  return loads[b]! * weights[a]! < loads[a]! * weights[b]! ? b : a;
}
