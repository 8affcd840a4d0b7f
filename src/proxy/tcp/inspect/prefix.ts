import { MORE, atLimit, clampEnd, clampLimit, key, none, type InspectReader, type InspectResult } from './types.js';

/**
 * `prefix:REGEX`: the first capture group of a regular expression run over the first
 * bytes as latin1 (one byte, one character, so any byte can be matched). Compiled
 * once, at configuration time, where a bad pattern is an error; the reader itself
 * never throws.
 *
 * A match is taken as soon as there is one, so the pattern should end in something
 * that marks the end of the field (`^GET /u/([^/ ]+)/`, `user=(\w+);`): a pattern
 * whose capture could grow with later bytes (`user=(\w+)`) may give a shorter key
 * when the bytes arrive in pieces.
 */

const EMPTY_CAPTURE = none('prefix: the capture group is empty or did not take part');
const ALLOWED_FLAGS = /^[ims]*$/;

export interface PrefixOptions {
  /** Regular expression flags: any of i, m, s (g and y would make matching stateful). */
  readonly flags?: string;
}

/** Compile `source`; throws (a configuration error) if it is not a valid pattern with a capture group. */
export function compilePrefix(source: string, options: PrefixOptions = {}): InspectReader {
  const flags = options.flags ?? '';
  if (!ALLOWED_FLAGS.test(flags)) throw new Error(`prefix: flags ${JSON.stringify(flags)}: only i, m and s are allowed`);
  const pattern = new RegExp(source, flags);
  // An alternative that matches the empty string makes every group show up in the result.
  if (new RegExp(`${source}|`, flags).exec('')!.length < 2) throw new Error('prefix: the pattern has no capture group');
  return (buf: Buffer, end: number, limit?: number): InspectResult => {
    const max = clampLimit(limit);
    const bound = Math.min(clampEnd(buf, end), max);
    const match = pattern.exec(buf.toString('latin1', 0, bound));
    if (match === null) return atLimit(MORE, bound, max);
    const capture = match[1];
    return capture === undefined || capture === '' ? EMPTY_CAPTURE : key(capture);
  };
}
