import { ChunkedFramer, type ChunkedLimits } from './chunked.js';
import { H1Error, NEED_MORE, type H1ErrorCode } from './errors.js';
import { Body, type BodyKind } from './head-parser.js';
import { LengthFramer } from './length-body.js';

/**
 * The body of one message, whatever its framing: the relay asks where it ends in
 * each read and writes everything before that on as it came. One per direction of a
 * connection, reset per message, so framing state is never allocated per request.
 */
export class MessageBody {
  #kind: BodyKind = Body.None;
  readonly #length = new LengthFramer();
  #chunked: ChunkedFramer | null = null;
  readonly #limits: ChunkedLimits;

  constructor(limits: ChunkedLimits = {}) {
    this.#limits = limits;
  }

  get kind(): BodyKind {
    return this.#kind;
  }

  /** Why the last `end` failed (a malformed chunk). */
  get error(): H1ErrorCode {
    return this.#chunked?.error ?? H1Error.None;
  }

  /** A new message with this framing (`contentLength` read only for Body.Length). */
  start(kind: BodyKind, contentLength: number): void {
    this.#kind = kind;
    if (kind === Body.Chunked) (this.#chunked ??= new ChunkedFramer(this.#limits)).reset();
    else this.#length.reset(kind === Body.Length ? contentLength : 0);
  }

  /**
   * Where the body ends in `buf` from `at`: the offset just after it, NEED_MORE when
   * all of `buf` from `at` is body and more is due (always, for a body that ends
   * with the connection), or FAILED (a malformed chunk: see `error`).
   */
  end(buf: Uint8Array, at: number): number {
    switch (this.#kind) {
      case Body.Chunked:
        return this.#chunked!.execute(buf, at, buf.length);
      case Body.UntilClose:
        return NEED_MORE;
      default:
        return this.#length.execute(buf, at, buf.length);
    }
  }
}
