/**
 * The `source-ip` key: the client address as text. An IPv4-mapped IPv6 address
 * (a dual-stack listener's view of an IPv4 client) becomes its dotted IPv4 form, so
 * one client hashes alike on `0.0.0.0` and `[::]` listeners. Node already gives IPv6
 * in compressed lower-case form.
 */
export function sourceIpKey(address: string): string {
  if (address.length > 7 && address.charCodeAt(0) === 58 /* : */ && address.startsWith('::ffff:') && address.includes('.')) {
    return address.slice(7);
  }
  return address;
}

// Strict address text parsers and a formatter for PROXY headers. Addresses in a
// header come from the network, so they are checked character by character (no
// regular expressions, no splitting) and written back in the form Node gives a
// socket's address, so a key taken from a header hashes like the same address
// seen on a socket.

/**
 * A dotted IPv4 address in `text[start, end)` as an unsigned 32-bit number, or -1.
 * Exactly four decimal parts of 1-3 digits, each at most 255, without leading zeros
 * (as inet_pton, which would otherwise read `010` as octal elsewhere).
 */
export function parseIPv4(text: string, start = 0, end = text.length): number {
  let value = 0;
  let parts = 0;
  let i = start;
  while (i < end) {
    let part = 0;
    const first = i;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      part = part * 10 + (c - 48);
      i++;
      if (i - first > 3) return -1;
    }
    if (i === first || part > 255) return -1;
    if (i - first > 1 && text.charCodeAt(first) === 48) return -1;
    value = value * 256 + part;
    parts++;
    if (i === end) break;
    if (text.charCodeAt(i) !== 46 /* . */ || parts === 4) return -1;
    i++;
    if (i === end) return -1;
  }
  return parts === 4 ? value : -1;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/**
 * An IPv6 address (RFC 4291 text form: `::` once at most, an optional dotted IPv4
 * tail; no zone) written as 16 bytes into `out` at `offset`. False when malformed;
 * `out` may then hold partial data.
 */
export function parseIPv6(text: string, out: Uint8Array, offset = 0): boolean {
  const n = text.length;
  if (n < 2 || n > 45) return false;
  // 16-bit groups go straight into `out`; a `::` gap is opened afterwards.
  let count = 0;
  let gap = -1;
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < n) {
    if (count === 8) return false;
    const start = i;
    let group = 0;
    while (i < n) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      group = (group << 4) | h;
      i++;
      if (i - start > 4) return false;
    }
    if (i < n && text.charCodeAt(i) === 46 /* . */) {
      // The last 32 bits in dotted form.
      if (count > 6) return false;
      const v4 = parseIPv4(text, start, n);
      if (v4 < 0) return false;
      out[offset + count * 2] = v4 >>> 24;
      out[offset + count * 2 + 1] = (v4 >>> 16) & 0xff;
      out[offset + count * 2 + 2] = (v4 >>> 8) & 0xff;
      out[offset + count * 2 + 3] = v4 & 0xff;
      count += 2;
      i = n;
      break;
    }
    if (i === start) return false;
    out[offset + count * 2] = group >>> 8;
    out[offset + count * 2 + 1] = group & 0xff;
    count++;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i === n) return false; // a trailing single ':'
    if (text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = count;
      i++;
    }
  }
  if (gap < 0) return count === 8;
  // `::` stands for at least one zero group.
  if (count > 7) return false;
  const tailBytes = (count - gap) * 2;
  const shift = (8 - count) * 2;
  for (let k = tailBytes - 1; k >= 0; k--) out[offset + gap * 2 + shift + k] = out[offset + gap * 2 + k]!;
  for (let k = 0; k < shift; k++) out[offset + gap * 2 + k] = 0;
  return true;
}

/** Dotted text of the four bytes at `offset`. */
export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * The 16 bytes at `offset` in the form Node reports socket addresses (libuv's
 * inet_ntop, after ISC): lower-case hex without leading zeros, the longest run of two
 * or more zero groups (the first on a tie) as `::`, and IPv4-mapped (`::ffff:a.b.c.d`)
 * and IPv4-compatible (`::a.b.c.d`) addresses with a dotted tail. RFC 5952 form.
 */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let g = 0; g <= 8; g++) {
    const zero = g < 8 && bytes[offset + g * 2] === 0 && bytes[offset + g * 2 + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = g;
    } else if (runStart >= 0) {
      if (g - runStart > bestLen) {
        bestStart = runStart;
        bestLen = g - runStart;
      }
      runStart = -1;
    }
  }
  if (bestLen < 2) bestStart = -1;
  let text = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += ':';
      g += bestLen - 1;
      if (g === 7) text += ':';
      continue;
    }
    if (g > 0) text += ':';
    if (g === 6 && bestStart === 0 && (bestLen === 6 || (bestLen === 5 && bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff))) {
      return text + formatIPv4(bytes, offset + 12);
    }
    text += ((bytes[offset + g * 2]! << 8) | bytes[offset + g * 2 + 1]!).toString(16);
  }
  return text;
}

/** Whether the 16 bytes at `offset` are an IPv4-mapped IPv6 address (::ffff:0:0/96). */
export function isMappedIPv4(bytes: Uint8Array, offset = 0): boolean {
  for (let k = 0; k < 10; k++) if (bytes[offset + k] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

/**
 * An IPv4 or IPv6 address as 16 bytes, IPv4 mapped into ::ffff:0:0/96, so that
 * `1.2.3.4` and `::ffff:1.2.3.4` are the same bytes. A zone (`%eth0`) is ignored.
 * null when the text is not an address.
 */
export function addressBytes(address: string): Uint8Array | null {
  return parseAddress(address)?.bytes ?? null;
}

/** addressBytes, with the family the text was written in. */
export function parseAddress(address: string): { readonly bytes: Uint8Array; readonly family: 4 | 6 } | null {
  const percent = address.indexOf('%');
  const text = percent < 0 ? address : address.slice(0, percent);
  const bytes = new Uint8Array(16);
  const v4 = parseIPv4(text);
  if (v4 >= 0) {
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    bytes[12] = v4 >>> 24;
    bytes[13] = (v4 >>> 16) & 0xff;
    bytes[14] = (v4 >>> 8) & 0xff;
    bytes[15] = v4 & 0xff;
    return { bytes, family: 4 };
  }
  return parseIPv6(text, bytes) ? { bytes, family: 6 } : null;
}
