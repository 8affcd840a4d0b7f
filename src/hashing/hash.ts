/**
 * Key hashing: XXH32 in pure JavaScript for short keys, xxhash-wasm for long ones,
 * xxhash-addon where WebAssembly is not available.
 *
 * XXH32 (Yann Collet, https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md)
 * is fast on short inputs and passes SMHasher; 32 bits is all a lookup table needs.
 * The JS paths work on int32 values with Math.imul, so V8 keeps them in machine
 * integers. The routing path (hashKey32) stays int32 all the way: a uint32 at or
 * above 2^31 is not a small integer to V8, and every one returned from a function
 * that is not inlined is boxed in a fresh 12-byte HeapNumber (measured: ~8 bytes of
 * garbage per lookup on average). The public uint32 forms (`>>> 0`) are for callers
 * that want the conventional value.
 *
 * Strings are hashed over their UTF-8 bytes, so a key hashes the same here, in
 * xxhash-addon, and in any other XXH32 implementation given the same bytes.
 */
import { createRequire } from 'node:module';

const PRIME32_1 = 0x9e3779b1;
const PRIME32_2 = 0x85ebca77;
const PRIME32_3 = 0xc2b2ae3d;
const PRIME32_4 = 0x27d4eb2f;
const PRIME32_5 = 0x165667b1;

/**
 * Keys at least this many UTF-16 code units long go to xxhash-wasm when it is
 * loaded. `native-bench/lookup.mjs` (Node 20, x86-64): JS XXH32 costs ~1.3 ns a byte
 * (23 ns at 10 bytes, 64 at 40, 181 at 128, 1.3 us at 1 KiB), xxhash-wasm ~55 ns a
 * call plus ~0.15 ns a byte (62 ns at 10 bytes, 74 at 128, 210 at 1 KiB), and it
 * allocates a little per call (TextEncoder.encodeInto's result). They tie near 40
 * bytes; from 128 wasm is 2.4x faster and its garbage is small beside the work.
 * Addresses, session ids and most tokens stay on the allocation-free JS path.
 */
export const WASM_HASH_MIN_LENGTH = 128;

/**
 * Keys at least this many UTF-16 code units long go to xxhash-addon when it is
 * enabled and xxhash-wasm is not loaded (WebAssembly off, e.g. node --jitless). `native-bench/hash-quality.mjs` times both on flat ASCII strings (Node
 * 20, x86-64): the addon pays 0.4-0.9 us a call whatever the size (N-API crossing,
 * the UTF-8 copy into a Buffer, a new 4-byte result Buffer for the GC), while the
 * JS loop costs about 1 ns a byte. They meet between 512 and 768 bytes; at 1024
 * the addon is ~1.5-1.9x faster, below 256 it is 2-25x slower. The threshold sits at
 * 1024, past the noise of the crossover and its per-call garbage, and keys that
 * long are rare anyway (addresses, session ids and tokens are 7-64 bytes). For
 * ASCII keys code units are bytes; for others the count underestimates, which only
 * sends a few keys to the side that is about as fast.
 */
export const NATIVE_HASH_MIN_LENGTH = 1024;

/** A scratch buffer this large is kept; a key needing more gets a one-off buffer. */
const SCRATCH_KEEP_MAX = 64 * 1024;

type XXHash32Class = typeof import('xxhash-addon').XXHash32;
interface WasmXXHash {
  h32(input: string, seed?: number): number;
}

/**
 * Optional, like ws loads bufferutil (lib/buffer-util.js): when the addon cannot be
 * loaded on this platform, the JS implementation gives the same hashes. Loaded with
 * require because the package is CommonJS and may be absent; `TETHER_NATIVE_HASH=0`
 * keeps it off (as WS_NO_BUFFER_UTIL does for ws).
 */
const NativeXXHash32: XXHash32Class | null = loadNative();

function loadNative(): XXHash32Class | null {
  if (process.env.TETHER_NATIVE_HASH === '0') return null;
  try {
    const addon = createRequire(import.meta.url)('xxhash-addon') as { XXHash32?: XXHash32Class };
    return typeof addon.XXHash32 === 'function' ? addon.XXHash32 : null;
  } catch {
    return null;
  }
}

/** xxhash-wasm, instantiated once at load (off with TETHER_NATIVE_HASH=0, or without WebAssembly). */
const WasmXXHash32: WasmXXHash | null = await loadWasm();

async function loadWasm(): Promise<WasmXXHash | null> {
  if (process.env.TETHER_NATIVE_HASH === '0') return null;
  try {
    const xxhash = (await import('xxhash-wasm')).default;
    return await xxhash();
  } catch {
    return null;
  }
}

let nativeEnabled = NativeXXHash32 !== null || WasmXXHash32 !== null;

/** Whether xxhash-addon could be loaded (and was not disabled by TETHER_NATIVE_HASH=0). */
export function nativeHashAvailable(): boolean {
  return NativeXXHash32 !== null;
}

/** Whether xxhash-wasm could be instantiated (and was not disabled by TETHER_NATIVE_HASH=0). */
export function wasmHashAvailable(): boolean {
  return WasmXXHash32 !== null;
}

/**
 * Turns the accelerated paths of hashKey() (xxhash-wasm, xxhash-addon) on or off;
 * hashes are identical either way. Returns whether they are now on (they stay off
 * when neither could be loaded).
 */
export function setNativeHash(enabled: boolean): boolean {
  nativeEnabled = enabled && (NativeXXHash32 !== null || WasmXXHash32 !== null);
  return nativeEnabled;
}

/** Reused for keys that are not pure ASCII; grown on demand, never per call. */
let scratch: Buffer = Buffer.allocUnsafe(256);
/** Bytes written by the last encodeUtf8() (a second return value without an object). */
let scratchLength = 0;

/**
 * Writes the UTF-8 form of `key` into a buffer with room for it and returns that
 * buffer; the byte count is left in `scratchLength`. 3 bytes per UTF-16 code unit is
 * the worst case (a surrogate pair is 2 units and 4 bytes; a lone surrogate becomes
 * U+FFFD, 3 bytes, as in Buffer.from), so the write is never cut short.
 */
function encodeUtf8(key: string): Buffer {
  const need = key.length * 3;
  let buf = scratch;
  if (need > buf.length) {
    buf = Buffer.allocUnsafe(need);
    if (need <= SCRATCH_KEEP_MAX) scratch = buf;
  }
  scratchLength = buf.write(key, 0, 'utf8');
  return buf;
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** One lane step of the 16-byte stripe loop (spec: "round"). */
function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, PRIME32_2)) | 0, 13), PRIME32_1);
}

/** The final mix; int32 in, int32 out (callers that want uint32 add `>>> 0`). */
function avalanche(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, PRIME32_2);
  h ^= h >>> 13;
  h = Math.imul(h, PRIME32_3);
  h ^= h >>> 16;
  return h;
}

function readLE32(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/** XXH32 of bytes[0..len) as an int32; `seed` is the seed's 32 bits as an int32. */
function xxh32Bytes(b: Uint8Array, len: number, seed: number): number {
  let i = 0;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + PRIME32_1 + PRIME32_2) | 0;
    let v2 = (seed + PRIME32_2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - PRIME32_1) | 0;
    const limit = len - 16;
    do {
      v1 = round(v1, readLE32(b, i));
      v2 = round(v2, readLE32(b, i + 4));
      v3 = round(v3, readLE32(b, i + 8));
      v4 = round(v4, readLE32(b, i + 12));
      i += 16;
    } while (i <= limit);
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + PRIME32_5) | 0;
  }
  h = (h + len) | 0;
  for (; i + 4 <= len; i += 4) {
    h = Math.imul(rotl((h + Math.imul(readLE32(b, i), PRIME32_3)) | 0, 17), PRIME32_4);
  }
  for (; i < len; i++) {
    h = Math.imul(rotl((h + Math.imul(b[i]!, PRIME32_5)) | 0, 11), PRIME32_1);
  }
  return avalanche(h);
}

/** XXH32 of `bytes` with `seed` (uint32), as a uint32. */
export function xxh32(bytes: Uint8Array, seed = 0): number {
  return xxh32Bytes(bytes, bytes.length, seed | 0) >>> 0;
}

/**
 * Four code units packed little-endian, exactly as their UTF-8 bytes would be read,
 * or -1 if any of them is not ASCII. An ASCII lane is below 2^31, so -1 cannot be a
 * lane, and OR-ing lanes keeps the sign: one branch per 16-byte stripe.
 */
function asciiLane(s: string, i: number): number {
  const c0 = s.charCodeAt(i);
  const c1 = s.charCodeAt(i + 1);
  const c2 = s.charCodeAt(i + 2);
  const c3 = s.charCodeAt(i + 3);
  if ((c0 | c1 | c2 | c3) > 0x7f) return -1;
  return c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
}

/**
 * Set by xxh32Ascii when it met a code unit above 0x7F (a second return value
 * without an object: every int32 is a possible hash, so none can be a sentinel).
 */
let notAscii = false;

/**
 * XXH32 (int32) of an ASCII string read straight from its code units (an ASCII code
 * unit is its UTF-8 byte); gives up, setting `notAscii`, as soon as a code unit above
 * 0x7F turns up. Checking as we go costs no separate scan, and nearly every key
 * (addresses, session ids, tokens) is ASCII; the rare other key pays for the
 * abandoned prefix and then an encode.
 */
function xxh32Ascii(s: string, seed: number): number {
  const len = s.length;
  let i = 0;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + PRIME32_1 + PRIME32_2) | 0;
    let v2 = (seed + PRIME32_2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - PRIME32_1) | 0;
    const limit = len - 16;
    do {
      const a = asciiLane(s, i);
      const b = asciiLane(s, i + 4);
      const c = asciiLane(s, i + 8);
      const d = asciiLane(s, i + 12);
      if ((a | b | c | d) < 0) return giveUp();
      v1 = round(v1, a);
      v2 = round(v2, b);
      v3 = round(v3, c);
      v4 = round(v4, d);
      i += 16;
    } while (i <= limit);
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + PRIME32_5) | 0;
  }
  h = (h + len) | 0;
  for (; i + 4 <= len; i += 4) {
    const lane = asciiLane(s, i);
    if (lane < 0) return giveUp();
    h = Math.imul(rotl((h + Math.imul(lane, PRIME32_3)) | 0, 17), PRIME32_4);
  }
  for (; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return giveUp();
    h = Math.imul(rotl((h + Math.imul(c, PRIME32_5)) | 0, 11), PRIME32_1);
  }
  return avalanche(h);
}

function giveUp(): number {
  notAscii = true;
  return 0;
}

/** XXH32 (int32) of the UTF-8 bytes of `key`; `seed` as int32. */
function xxh32String32(key: string, seed: number): number {
  notAscii = false;
  const h = xxh32Ascii(key, seed);
  if (!notAscii) return h;
  const buf = encodeUtf8(key);
  return xxh32Bytes(buf, scratchLength, seed);
}

/**
 * XXH32 of the UTF-8 bytes of `key` with `seed` (uint32). Allocation-free, except
 * for a non-ASCII key too long for the kept scratch buffer (over 21,845 units), and
 * the boxing of a result at or above 2^31 where the call is not inlined.
 */
export function xxh32String(key: string, seed = 0): number {
  // The seed travels as int32 (same 32 bits). `seed >>> 0` here made every later
  // call twice as slow once any caller had omitted the seed: V8 then keeps a uint32
  // that may not fit a small integer (measured: 0.48 vs 0.83 M hashes/s at 1 KiB).
  return xxh32String32(key, seed | 0) >>> 0;
}

/** XXH32 of the UTF-8 bytes of `key` by xxhash-wasm, for benchmarks and cross-checks. */
export function xxh32StringWasm(key: string, seed = 0): number {
  if (WasmXXHash32 === null) throw new Error('xxhash-wasm is not available');
  return WasmXXHash32.h32(key, seed >>> 0) >>> 0;
}

/**
 * XXH32 of the UTF-8 bytes of `key` computed by xxhash-addon, for benchmarks and
 * cross-checks. Throws when the addon is unavailable. The addon takes a seed only
 * as a 4-byte big-endian Buffer (XXH32_canonical_t; a number is rejected), and its
 * data only as a Buffer: a string or number there segfaults the process (2.1.0),
 * so only Buffers from encodeUtf8 ever reach it.
 */
export function xxh32StringNative(key: string, seed = 0): number {
  const Native = NativeXXHash32;
  if (Native === null) throw new Error('xxhash-addon is not available');
  const buf = encodeUtf8(key);
  const view = buf.subarray(0, scratchLength);
  if (seed === 0) return Native.hash(view).readUInt32BE(0);
  const seedBytes = Buffer.alloc(4);
  seedBytes.writeUInt32BE(seed >>> 0, 0);
  const hasher = new Native(seedBytes);
  hasher.update(view);
  return hasher.digest().readUInt32BE(0);
}

/**
 * THE key hash, as an int32 (the same 32 bits as hashKey): what routing uses, since
 * tables take either form (they read `hash >>> 0`) and an int32 is never boxed.
 * XXH32 with seed 0 over the UTF-8 bytes: pure JS below WASM_HASH_MIN_LENGTH
 * (allocation-free), xxhash-wasm above it, or xxhash-addon from
 * NATIVE_HASH_MIN_LENGTH when WebAssembly is unavailable; the same value every way.
 */
export function hashKey32(key: string): number {
  if (nativeEnabled && key.length >= WASM_HASH_MIN_LENGTH) {
    if (WasmXXHash32 !== null) return WasmXXHash32.h32(key, 0) | 0;
    if (key.length >= NATIVE_HASH_MIN_LENGTH) {
      const buf = encodeUtf8(key);
      // Two small allocations per long key: the view, and the addon's 4-byte result.
      return NativeXXHash32!.hash(buf.subarray(0, scratchLength)).readInt32BE(0);
    }
  }
  return xxh32String32(key, 0);
}

/**
 * THE key hash as a uint32: every algorithm maps this value, so two processes (or a
 * process and its ring-building worker) always agree. See hashKey32.
 */
export function hashKey(key: string): number {
  return hashKey32(key) >>> 0;
}

/**
 * MurmurHash3's 32-bit finalizer (Austin Appleby, smhasher/src/MurmurHash3.cpp
 * `fmix32`): a bijection on uint32 with full avalanche, so `fmix32(hash ^ seed)`
 * gives each member an independent-looking score for the same key hash (rendezvous).
 */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
