import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  NATIVE_HASH_MIN_LENGTH,
  WASM_HASH_MIN_LENGTH,
  fmix32,
  hashKey,
  hashKey32,
  nativeHashAvailable,
  setNativeHash,
  wasmHashAvailable,
  xxh32,
  xxh32String,
  xxh32StringNative,
  xxh32StringWasm,
} from '../../../src/hashing/hash.js';
import { seededRandom } from './helpers.js';

interface Hasher {
  update(data: Buffer): void;
  digest(): Buffer;
}
const { XXHash32 } = createRequire(import.meta.url)('xxhash-addon') as {
  XXHash32: { new (seed: Buffer): Hasher; hash(data: Buffer): Buffer };
};

/** The reference: xxhash-addon (the C library), seed as 4 big-endian bytes. */
function reference(bytes: Uint8Array, seed: number): number {
  const seedBytes = Buffer.alloc(4);
  seedBytes.writeUInt32BE(seed >>> 0, 0);
  const hasher = new XXHash32(seedBytes);
  hasher.update(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return hasher.digest().readUInt32BE(0);
}

const SEEDS = [0, 1, 0xa1, 0xb2, 0x5eed, 0x7fffffff, 0x80000000, 0x9e3779b1, 0xffffffff];

describe('xxh32', () => {
  it.each([
    ['', 0, 0x02cc5d05],
    ['a', 0, 0x550d7456],
    ['abc', 0, 0x32d153ff],
    ['Nobody inspects the spammish repetition', 0, 0xe2293b2f],
  ])('matches the published vector for %j (seed %i)', (text, seed, expected) => {
    expect(xxh32(Buffer.from(text), seed)).toBe(expected);
    expect(xxh32String(text, seed)).toBe(expected);
  });

  it('matches xxhash-addon for every length 0..100 and for 1-4 KiB, under several seeds', () => {
    const random = seededRandom(1);
    const lengths = [...Array.from({ length: 101 }, (_, i) => i), 1023, 1024, 1025, 2048, 3000, 4095, 4096];
    for (const length of lengths) {
      const bytes = randomBytes(length);
      for (const seed of SEEDS) expect(xxh32(bytes, seed), `length ${length} seed ${seed}`).toBe(reference(bytes, seed));
      const seed = Math.floor(random() * 0x100000000);
      expect(xxh32(bytes, seed)).toBe(reference(bytes, seed));
    }
  });

  it('hashes a view at an offset inside a larger buffer', () => {
    const whole = randomBytes(200);
    const view = whole.subarray(13, 13 + 77);
    expect(xxh32(view, 3)).toBe(reference(Buffer.from(view), 3));
  });

  it('accepts a signed seed as the same 32 bits', () => {
    const bytes = randomBytes(40);
    expect(xxh32(bytes, -1)).toBe(xxh32(bytes, 0xffffffff));
  });
});

describe('xxh32String', () => {
  const strings = [
    '',
    'x',
    '10.0.0.1',
    '2001:db8::1',
    'sess-0123456789abcdef0123456789abcdef',
    'caf\u00e9', // 2-byte UTF-8
    'Stra\u00dfe-\u00fcber-\u00e9t\u00e9-0123456789', // non-ASCII after a clean 16-byte stripe
    '0123456789abcdef0123456789abcdef\u0100', // U+0100: low byte 0x00, must not pass as ASCII
    '\u0100\u0200\u0300\u0400\u0500\u0600\u0700\u0800\u0900\u0a00\u0b00\u0c00\u0d00\u0e00\u0f00\u1000',
    '\u65e5\u672c\u8a9e\u306e\u30bb\u30c3\u30b7\u30e7\u30f3', // 3-byte UTF-8
    'emoji-\u{1f600}-\u{1f680}-key', // surrogate pairs, 4-byte UTF-8
    'lone-\ud800-surrogate', // encoded as U+FFFD, as Buffer.from does
    '\u007f\u0080', // the ASCII boundary
    'a'.repeat(5000) + '\u00e9', // longer than the scratch buffer starts
  ];

  it.each(strings.map((s) => [s.length > 60 ? `${s.slice(0, 20)}... (${s.length})` : s, s]))(
    'hashes the UTF-8 bytes of %j',
    (_label, s) => {
      const utf8 = Buffer.from(s, 'utf8');
      for (const seed of SEEDS) expect(xxh32String(s, seed)).toBe(reference(utf8, seed));
    },
  );

  it('matches xxhash-addon on random strings of every kind of code unit', () => {
    const random = seededRandom(2);
    for (let n = 0; n < 2000; n++) {
      const length = Math.floor(random() * 70);
      const top = [0x80, 0x800, 0x10000][n % 3]!;
      let s = '';
      for (let i = 0; i < length; i++) s += String.fromCharCode(Math.floor(random() * top));
      expect(xxh32String(s, n)).toBe(reference(Buffer.from(s, 'utf8'), n));
    }
  });

  it('agrees with the native path for strings and seeds', () => {
    if (!nativeHashAvailable()) return;
    for (const s of strings) for (const seed of SEEDS) expect(xxh32StringNative(s, seed)).toBe(xxh32String(s, seed));
  });
});

describe('hashKey', () => {
  afterEach(() => {
    setNativeHash(true);
  });

  it('is XXH32 with seed 0 over UTF-8', () => {
    expect(hashKey('abc')).toBe(0x32d153ff);
    expect(hashKey('caf\u00e9')).toBe(reference(Buffer.from('caf\u00e9'), 0));
  });

  it('gives the same hash with and without the accelerated paths, around their thresholds', () => {
    const random = seededRandom(3);
    const lengths = [
      0, 1, 40,
      WASM_HASH_MIN_LENGTH - 1, WASM_HASH_MIN_LENGTH, WASM_HASH_MIN_LENGTH + 1,
      NATIVE_HASH_MIN_LENGTH - 1, NATIVE_HASH_MIN_LENGTH, NATIVE_HASH_MIN_LENGTH + 1,
      4096, 20000,
    ];
    for (const length of lengths) {
      for (const top of [0x80, 0x800]) {
        let s = '';
        for (let i = 0; i < length; i++) s += String.fromCharCode(Math.floor(random() * top));
        setNativeHash(true);
        const withNative = hashKey(s);
        expect(setNativeHash(false)).toBe(false);
        expect(hashKey(s), `length ${length}`).toBe(withNative);
        expect(withNative).toBe(reference(Buffer.from(s, 'utf8'), 0));
        // The int32 form routing uses carries the same 32 bits.
        expect(hashKey32(s) >>> 0).toBe(withNative);
        expect(hashKey32(s) | 0).toBe(hashKey32(s));
        if (wasmHashAvailable()) {
          for (const seed of [0, 1, 0x9e3779b1]) expect(xxh32StringWasm(s, seed)).toBe(reference(Buffer.from(s, 'utf8'), seed));
        }
      }
    }
  });

  it('loads xxhash-wasm (a dependency), so long keys never need the addon', () => {
    expect(wasmHashAvailable()).toBe(true);
    // A lone surrogate: WebAssembly's TextEncoder and Buffer both write U+FFFD.
    const odd = `${'x'.repeat(WASM_HASH_MIN_LENGTH)}\ud800`;
    expect(hashKey(odd)).toBe(reference(Buffer.from(odd, 'utf8'), 0));
  });

  it('leaves the addon unloaded when TETHER_NATIVE_HASH=0', async () => {
    const saved = process.env.TETHER_NATIVE_HASH;
    process.env.TETHER_NATIVE_HASH = '0';
    try {
      vi.resetModules();
      const fresh = await import('../../../src/hashing/hash.js');
      expect(fresh.nativeHashAvailable()).toBe(false);
      expect(fresh.wasmHashAvailable()).toBe(false);
      expect(fresh.setNativeHash(true)).toBe(false);
      const long = 'k'.repeat(NATIVE_HASH_MIN_LENGTH * 2);
      expect(fresh.hashKey(long)).toBe(hashKey(long));
      expect(() => fresh.xxh32StringNative('abc')).toThrow(/not available/);
    } finally {
      if (saved === undefined) delete process.env.TETHER_NATIVE_HASH;
      else process.env.TETHER_NATIVE_HASH = saved;
      vi.resetModules();
    }
  });

  it('reports whether the native path is on', () => {
    expect(setNativeHash(true)).toBe(nativeHashAvailable());
    expect(setNativeHash(false)).toBe(false);
  });
});

describe('fmix32', () => {
  // MurmurHash3_x86_32 of the empty input is fmix32(seed): SMHasher's published
  // values for seeds 0, 1 and 0xffffffff.
  it.each([
    [0, 0],
    [1, 0x514e28b7],
    [0xffffffff, 0x81f16f39],
  ])('fmix32(%i) = %i', (input, expected) => {
    expect(fmix32(input)).toBe(expected);
  });

  it('is a bijection on a sample (no collisions among 200,000 inputs)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200_000; i++) seen.add(fmix32(Math.imul(i, 0x9e3779b1)));
    expect(seen.size).toBe(200_000);
  });

  it('returns uint32 for int32 input', () => {
    for (let i = -1000; i < 1000; i++) {
      const h = fmix32(i);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThanOrEqual(0xffffffff);
    }
  });
});
