import type { InspectReader, InspectResult } from '../../src/proxy/tcp/inspect/index.js';

/** An answer as one comparable string (keys included: these are test values, never logged in production). */
export function answer(r: InspectResult): string {
  return r.kind === 'key' ? `key:${JSON.stringify(r.key)}` : r.kind === 'more' ? 'more' : `none:${r.reason}`;
}

/**
 * The reader over `input[0 .. end)` in a buffer whose bytes past `end` are not the
 * input's: either the rest of the input shifted by one, or noise. A reader that
 * reads past `end` sees the wrong bytes there and (usually) answers differently.
 */
export function readWithGarbage(reader: InspectReader, input: Buffer, end: number, limit: number, noise: number): InspectResult {
  const buf = Buffer.alloc(end + 64);
  input.copy(buf, 0, 0, end);
  if (noise % 2 === 0 && end + 1 < input.length) input.copy(buf, end, end + 1, Math.min(input.length, end + 65));
  else for (let i = end; i < buf.length; i++) buf[i] = (noise * 31 + i * 131) & 0xff;
  return reader(buf, end, limit);
}

/**
 * Feed growing prefixes (`ends`, any order) and the whole (capped at `limit`): the
 * answers must be `more` up to some length, then the whole's answer from there on.
 * Returns the whole's answer.
 */
export function checkChunking(reader: InspectReader, input: Buffer, ends: readonly number[], limit: number, noise = 0): InspectResult {
  const full = Math.min(input.length, limit);
  const whole = readWithGarbage(reader, input, full, limit, noise);
  const wholeAnswer = answer(whole);
  const sorted = [...new Set(ends.map((e) => Math.min(e, full)))].sort((a, b) => a - b);
  let settled = '';
  for (const end of sorted) {
    const got = answer(readWithGarbage(reader, input, end, limit, noise + end));
    if (settled === '') {
      if (got === 'more') continue;
      if (got !== wholeAnswer) throw new Error(`prefix of ${end} bytes answers ${got}, the whole (${full} bytes) ${wholeAnswer}`);
      settled = got;
    } else if (got !== settled) {
      throw new Error(`prefix of ${end} bytes answers ${got} after a shorter prefix settled on ${settled}`);
    }
  }
  return whole;
}

/** Every prefix length 0 .. input.length. */
export function everyEnd(input: Buffer): number[] {
  return Array.from({ length: input.length + 1 }, (_, i) => i);
}

/** `count` random prefix lengths in 0 .. n. */
export function someEnds(n: number, count: number, random: () => number): number[] {
  return Array.from({ length: count }, () => Math.floor(random() * (n + 1)));
}
