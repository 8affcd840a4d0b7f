import { NEED_MORE } from './errors.js';

/**
 * A Content-Length body: a countdown with ChunkedFramer's `execute` contract, so the
 * relay drives either framing the same way. `execute` returns the offset just after
 * the body once it ends, else NEED_MORE (every byte up to `end` is body).
 */
export class LengthFramer {
  /** Body bytes still due. */
  remaining = 0;

  reset(contentLength: number): void {
    this.remaining = contentLength;
  }

  get complete(): boolean {
    return this.remaining === 0;
  }

  execute(_buf: Uint8Array, start: number, end: number): number {
    const available = end - start;
    if (available < this.remaining) {
      this.remaining -= available;
      return NEED_MORE;
    }
    const at = start + this.remaining;
    this.remaining = 0;
    return at;
  }
}
