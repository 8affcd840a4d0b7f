/**
 * Where a builder gets its big arrays. By default each build allocates new ones; a
 * worker thread hands in the buffers of the table the routing thread just retired
 * (SpareBuffers), so in steady state no new memory crosses threads at all.
 *
 * Why it matters: a transferred ArrayBuffer counts as new external memory on the
 * thread that receives it, and V8 answers every ~64 MiB of external growth with a
 * full mark-compact there. A 1,000-upstream ring is 1.3 MB, so rebuilding it twenty
 * times a second forced a collection every few seconds on the thread that relays
 * bytes, with pauses of 2-8 ms (measured with --trace-gc).
 */
export interface ArrayArena {
  /** A Uint32Array of `length` zeroed or not: the builder writes every element. */
  uint32(length: number): Uint32Array;
}

/** Allocates fresh arrays (the default). */
export const FRESH: ArrayArena = {
  uint32: (length) => new Uint32Array(length),
};

/**
 * Reuses the buffers it is given: the smallest that fits (and is not more than
 * twice the size), viewed from offset 0. New buffers get 1/8 headroom so a table
 * that grows by a member or two still fits next time.
 */
export class SpareBuffers implements ArrayArena {
  readonly #spare: ArrayBuffer[];

  constructor(spare: readonly ArrayBuffer[]) {
    this.#spare = spare.filter((b) => b.byteLength > 0);
  }

  uint32(length: number): Uint32Array {
    const bytes = length * 4;
    let best = -1;
    for (let i = 0; i < this.#spare.length; i++) {
      const size = this.#spare[i]!.byteLength;
      if (size >= bytes && size <= bytes * 2 && (best < 0 || size < this.#spare[best]!.byteLength)) best = i;
    }
    if (best >= 0) return new Uint32Array(this.#spare.splice(best, 1)[0]!, 0, length);
    return new Uint32Array(roomyBuffer(bytes), 0, length);
  }
}

/** A new buffer for `bytes` with 1/8 headroom, so a table that grows a little still fits it next time. */
export function roomyBuffer(bytes: number): ArrayBuffer {
  return new ArrayBuffer(Math.ceil((bytes + (bytes >>> 3)) / 8) * 8);
}
