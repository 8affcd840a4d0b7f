/**
 * What a first-bytes reader says about the bytes a client has sent so far:
 * - `key`: the field was found in a complete, well-formed message;
 * - `more`: the bytes are a prefix of a message that could still be well formed;
 * - `none`: not this protocol, malformed, the field is absent, or the message would
 *   not fit in the inspect limit: the key chain goes on to its next source.
 * Readers are pure: called again with a longer buffer as bytes arrive, they never
 * read past `end`, never throw, and allocate nothing but the key string (their
 * `more` and `none` answers are shared constants).
 */
export type InspectResult =
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'more' }
  | { readonly kind: 'none'; readonly reason: string };

/**
 * A reader over `buf[0 .. end)`. `limit` is how many bytes the caller will ever
 * buffer (TETHER_INSPECT_BYTES): a message that cannot be complete within it is
 * `none` as soon as that is known, and `more` never comes back once `end >= limit`.
 */
export type InspectReader = (buf: Buffer, end: number, limit?: number) => InspectResult;

/** The default for TETHER_INSPECT_BYTES. */
export const DEFAULT_INSPECT_BYTES = 16 * 1024;

export const MORE: InspectResult = Object.freeze({ kind: 'more' });

/** For module-level constants: a reader's `none` answers are made once, not per call. */
export function none(reason: string): InspectResult {
  return Object.freeze({ kind: 'none', reason });
}

export function key(value: string): InspectResult {
  return { kind: 'key', key: value };
}

/** `end` as a safe bound: an integer in [0, buf.length] whatever the caller passed. */
export function clampEnd(buf: Buffer, end: number): number {
  if (!(end > 0)) return 0; // NaN and negatives
  return end >= buf.length ? buf.length : Math.floor(end);
}

/** `limit` as a safe bound: a positive integer, the default when absent or nonsense. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !(limit >= 1)) return DEFAULT_INSPECT_BYTES;
  return Math.floor(limit);
}

export const LIMIT_REACHED = none('no complete message within the inspect limit');

/** The last step of every reader: a `more` at or past the limit is final. */
export function atLimit(result: InspectResult, end: number, limit: number): InspectResult {
  return result === MORE && end >= limit ? LIMIT_REACHED : result;
}
