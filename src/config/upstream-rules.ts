/**
 * What makes an upstream name and weight valid, wherever one comes in: settings
 * (config/parse-upstreams.ts), the admin API (admin/server.ts), the shared store
 * (store/redis/membership.ts) and a table build (hashing/tables.ts).
 */

/** Weights are integers in this range. */
export const UPSTREAM_WEIGHT = { min: 1, max: 256 } as const;

/** The characters and length of an upstream name, as the messages say it. */
export const UPSTREAM_NAME_RULE = '1-128 of A-Z a-z 0-9 . _ : - [ ]';

const UPSTREAM_NAME = /^[A-Za-z0-9._:\-[\]]{1,128}$/;

export function isUpstreamName(name: string): boolean {
  return UPSTREAM_NAME.test(name);
}

export function isUpstreamWeight(weight: unknown): weight is number {
  return typeof weight === 'number' && Number.isInteger(weight) && weight >= UPSTREAM_WEIGHT.min && weight <= UPSTREAM_WEIGHT.max;
}
