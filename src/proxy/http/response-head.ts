import type { Exchange } from './exchange.js';
import { Body, FAILED, h1ErrorName, NEED_MORE, type ResponseHead } from './h1/index.js';
import type { ClientSide, UpstreamSideHost } from './types.js';

/** What reading a response head calls on its upstream side (upstream-side.ts). */
export interface ResponseHeadUser {
  /** Stop reading the upstream: its bytes wait while the head's pins are stored. */
  pauseUpstream(): void;
  /** The final head, its pins stored: on to the client, then its body from `buf[at]`. */
  afterHead(head: Buffer, buf: Buffer, at: number): void;
  /** The pins were stored after a wait: the head goes on with `rest` (read meanwhile), and reading resumes. */
  afterLearning(head: Buffer, rest: Buffer | null): void;
  /** The upstream broke the exchange: 502 if the client has had nothing of the response, else a close. */
  broke(reason: string): void;
}

/**
 * The head of each response on a client's upstream side: interim answers (100
 * Continue) relayed as they come, the final head checked, and the pins it teaches
 * (learn rules, TETHER_STICK) stored before it goes on, with the upstream paused and
 * its bytes kept meanwhile. One per upstream side, reused response after response;
 * the parser is the listener's, held for the exchange.
 */
export class ResponseHeadReader {
  readonly #client: ClientSide;
  readonly #host: UpstreamSideHost;
  readonly #user: ResponseHeadUser;
  #res: ResponseHead | null = null;
  /** A response head spans reads (its bytes are copied out of the parser). */
  #headSpans = false;
  /** The final head is in; the pins it teaches are being stored. */
  #learning = false;
  /** Upstream bytes read while the response head's pins were stored. */
  #pending: Buffer | null = null;

  constructor(client: ClientSide, host: UpstreamSideHost, user: ResponseHeadUser) {
    this.#client = client;
    this.#host = host;
    this.#user = user;
  }

  /** The response under way, as its head said (its framing, keep-alive). */
  get response(): ResponseHead {
    return this.#res!;
  }

  /** The head is in and its pins are being stored: what comes is kept, not read. */
  get learning(): boolean {
    return this.#learning;
  }

  /** The request is written: the next byte from the upstream starts its response. */
  start(method: string): void {
    this.#headSpans = false;
    this.#learning = false;
    (this.#res ??= this.#host.takeResponseParser()).reset(method);
  }

  /** A read from the upstream while the head is read, or kept while its pins are stored. */
  read(buf: Buffer): void {
    if (this.#learning) {
      this.#pending = this.#pending === null ? buf : Buffer.concat([this.#pending, buf]);
      return;
    }
    const res = this.#res!;
    let at = 0;
    for (;;) {
      const end = res.execute(buf, at, buf.length);
      if (end === NEED_MORE) {
        this.#headSpans = true;
        return;
      }
      if (end === FAILED) {
        this.#user.broke(`malformed response: ${h1ErrorName(res.error)}`);
        return;
      }
      const length = res.bytes.length;
      const head = this.#headSpans ? Buffer.from(res.bytes) : buf.subarray(end - length, end);
      this.#headSpans = false;
      if (!res.interim) {
        this.#finalHead(head, buf, end);
        return;
      }
      // 100 Continue and other interim answers go on as they came; the final one follows.
      const exchange = this.#client.exchange!;
      exchange.toClient += head.length;
      this.#client.socket.write(head);
      res.reset(exchange.method);
      at = end;
    }
  }

  #finalHead(head: Buffer, buf: Buffer, end: number): void {
    const exchange = this.#client.exchange!;
    const res = this.#res!;
    exchange.status = res.status;
    if (res.bodyKind === Body.Tunnel && !this.#client.upgrade) {
      this.#user.broke(`unexpected ${res.status} response`);
      return;
    }
    // A pin is stored before the response that taught it reaches the client
    // (docs/routing.md, rule 11), so the client's next request finds it anywhere.
    const learning = this.#host.learn(exchange, exchange.upstream!, res);
    if (learning === null) {
      this.#user.afterHead(head, buf, end);
      return;
    }
    this.#learning = true;
    this.#user.pauseUpstream();
    if (end < buf.length) this.#pending = buf.subarray(end);
    learning.then(
      () => this.#learned(exchange, head),
      (err: unknown) => {
        if (this.#client.exchange === exchange) this.#client.close(`storing pins failed: ${String(err)}`);
      },
    );
  }

  #learned(exchange: Exchange, head: Buffer): void {
    if (!this.#learning || this.#client.exchange !== exchange) return;
    const rest = this.#pending;
    this.#pending = null;
    this.#learning = false;
    this.#user.afterLearning(head, rest);
  }

  /** The exchange is over: the parser back to the listener, bytes kept dropped. */
  reset(): void {
    if (this.#res !== null) {
      this.#host.giveResponseParser(this.#res);
      this.#res = null;
    }
    this.#pending = null;
    this.#learning = false;
  }
}
