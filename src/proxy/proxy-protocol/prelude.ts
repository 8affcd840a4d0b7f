import type { Outcome } from '../types.js';
import type { ProxyAccept, ProxyHeader } from './header.js';
import { ProxyHeaderParser } from './parse.js';

/** How reading an inbound PROXY header ended. */
export type PreludeEnd =
  | { readonly kind: 'done'; readonly header: ProxyHeader; readonly rest: Buffer }
  /** `outcome` null: the client left before sending a byte, which is no bad request. */
  | { readonly kind: 'failed'; readonly outcome: Outcome | null; readonly reason: string };

/**
 * The inbound PROXY header phase both listeners go through: the parser, and one
 * deadline for the whole header (a total, not an idle, limit: a header trickled a
 * byte at a time still ends). Its owner feeds it chunks and wires the socket; it
 * ends once, with the header and the bytes after it, or with a failure to count.
 */
export class ProxyPrelude<T> {
  readonly #parser: ProxyHeaderParser;
  readonly #timer: NodeJS.Timeout;

  /** `onTimeout(owner)` runs when `timeoutMs` pass before the header is whole. */
  constructor(accept: ProxyAccept, timeoutMs: number, onTimeout: (owner: T) => void, owner: T) {
    this.#parser = new ProxyHeaderParser(accept);
    this.#timer = setTimeout(onTimeout, timeoutMs, owner);
  }

  /** Whether any byte of a header has been read. */
  get started(): boolean {
    return this.#parser.started;
  }

  /** The next chunk (the parser may keep it). null: more is needed. */
  push(chunk: Buffer): PreludeEnd | null {
    const result = this.#parser.push(chunk);
    if (result.kind === 'more') return null;
    this.stop();
    if (result.kind === 'error') return { kind: 'failed', outcome: 'bad_request', reason: `bad PROXY header: ${result.reason}` };
    return result;
  }

  /** The client's FIN, or the deadline, came before a whole header. */
  incomplete(timedOut: boolean): PreludeEnd {
    this.stop();
    if (timedOut) return { kind: 'failed', outcome: 'timeout', reason: 'PROXY header timeout' };
    if (this.#parser.started) return { kind: 'failed', outcome: 'bad_request', reason: 'truncated PROXY header' };
    return { kind: 'failed', outcome: null, reason: 'client closed before PROXY header' };
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
