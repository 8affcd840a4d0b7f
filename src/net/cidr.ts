/**
 * CIDR blocks: parsed once from settings (config/parse.ts wraps parseCidrText in a
 * ConfigError), matched against socket addresses on the data plane (trusted proxies).
 * A CIDR with host bits set (`10.0.0.1/8`) is refused with the network it probably
 * meant, rather than silently widened.
 */
import { formatIPv4, formatIPv6, parseAddress, addressBytes } from './address.js';
import type { Cidr } from './types.js';

export type { Cidr } from './types.js';

/** Why a text is not a CIDR: what was expected instead. */
export interface CidrProblem {
  readonly expected: string;
}

/** What parseCidrText expects of a text in general. */
export const CIDR_EXPECTED = 'a CIDR like 10.0.0.0/8 or fd00::/8, or an IP address';

/** `10.0.0.0/8`, `fd00::/8`; a bare address is /32 or /128. */
export function parseCidrText(item: string): Cidr | CidrProblem {
  const source = item.trim();
  const slash = source.indexOf('/');
  const addressText = slash < 0 ? source : source.slice(0, slash);
  const prefixText = slash < 0 ? undefined : source.slice(slash + 1);
  const address = parseAddress(addressText);
  if (address === null) return { expected: CIDR_EXPECTED };
  const family = address.family;
  const max = family === 4 ? 32 : 128;
  const given = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
  if (given < 0 || given > max) return { expected: `a CIDR with a prefix length from 0 to ${max}` };
  const prefix = family === 4 ? given + 96 : given;
  const raw = address.bytes;
  const bytes = masked(raw, prefix);
  if (!prefixMatches(raw, bytes, 128)) {
    const network = family === 4 ? formatIPv4(bytes, 12) : formatIPv6(bytes);
    return { expected: `a CIDR network address (did you mean ${network}/${given}?)` };
  }
  return { source, family, bytes, prefix };
}

/**
 * Whether an address (as a socket reports it: `10.1.2.3`, `::1`, `::ffff:10.1.2.3`)
 * lies in any of the blocks. IPv4 and IPv4-mapped IPv6 match alike. Not an address:
 * false.
 */
export function cidrContains(cidrs: readonly Cidr[], address: string): boolean {
  if (cidrs.length === 0) return false;
  const bytes = addressBytes(address);
  if (bytes === null) return false;
  for (const cidr of cidrs) if (prefixMatches(bytes, cidr.bytes, cidr.prefix)) return true;
  return false;
}

function masked(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = bytes[i]! & ((0xff00 >> bits) & 0xff);
  }
  return out;
}

function prefixMatches(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const bits = prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff00 >> bits) & 0xff;
  return (a[whole]! & mask) === (b[whole]! & mask);
}
