import type { FoundKey } from '../../routing/keys.js';
import type { OpeningPhase } from '../context.js';
import type { Session } from '../session.js';
import type { TcpKeyChain } from './key-chain.js';

/** A connection's key was found (or not: null) in its first bytes. */
export type KeyReady = (session: Session, found: FoundKey | null) => void;

export interface InspectLimits {
  /** TETHER_INSPECT_BYTES. */
  readonly bytes: number;
  /** TETHER_INSPECT_TIMEOUT_MS. */
  readonly timeoutMs: number;
}

/**
 * Read the connection's first bytes until the chain's links give a key, at most
 * `limits.bytes` bytes and `limits.timeoutMs` long (a total: a client that trickles
 * still ends). Bytes already read (after a PROXY header) come in `session.pending`.
 * Every byte read stays in `session.pending`, unchanged, to be written upstream
 * first. Then `ready` is called once, unless the session closes first.
 */
export function readFirstBytes(session: Session, chain: TcpKeyChain, limits: InspectLimits, ready: KeyReady): void {
  const phase = new FirstBytesPhase(session, chain, limits, ready);
  const pending = session.pending;
  session.pending = null;
  if (pending !== null && !phase.push(pending)) return;
  phase.startTimer();
  session.beginOpening(phase);
}

const WAIT = 0;

class FirstBytesPhase implements OpeningPhase {
  readonly #session: Session;
  readonly #chain: TcpKeyChain;
  readonly #limit: number;
  readonly #timeoutMs: number;
  readonly #ready: KeyReady;
  #timer: NodeJS.Timeout | null = null;
  /** The bytes read so far: `#buf[0 .. #end)`. */
  #buf: Buffer | null = null;
  #end = 0;
  /** Links before this one have said `none`: they are not asked again. */
  #first = 0;
  #done = false;

  constructor(session: Session, chain: TcpKeyChain, limits: InspectLimits, ready: KeyReady) {
    this.#session = session;
    this.#chain = chain;
    this.#limit = limits.bytes;
    this.#timeoutMs = limits.timeoutMs;
    this.#ready = ready;
  }

  startTimer(): void {
    this.#timer = setTimeout(onInspectTimeout, this.#timeoutMs, this);
  }

  push(chunk: Buffer): boolean {
    if (this.#done) return false;
    this.#append(chunk);
    const found = this.#decide(this.#end >= this.#limit);
    if (found === WAIT) return true;
    this.#finish(found);
    return false;
  }

  /** The client's FIN: what it sent is all there is. */
  end(): void {
    this.timedOut();
  }

  /** Time is up: links still waiting for more say nothing. */
  timedOut(): void {
    if (this.#done) return;
    const found = this.#decide(true);
    if (found !== WAIT) this.#finish(found);
  }

  abort(): void {
    this.#done = true;
    this.#clearTimer();
  }

  /** The first key the chain yields; WAIT while a link could still give one. */
  #decide(final: boolean): FoundKey | null | typeof WAIT {
    const buf = this.#buf;
    const links = this.#chain.links;
    if (buf !== null) {
      for (let i = this.#first; i < links.length; i++) {
        const link = links[i]!;
        const result = link.read(buf, this.#end, this.#limit);
        if (result.kind === 'key') return { key: result.key, source: link.source };
        if (result.kind === 'more' && !final) {
          this.#first = i;
          return WAIT;
        }
      }
    } else if (!final) {
      return WAIT;
    }
    return this.#chain.sourceIp ? { key: this.#session.clientAddress, source: 'source-ip' } : null;
  }

  /**
   * The bytes kept whole for forwarding. The first chunk is kept as it came (a copy
   * already); a second one makes one buffer of `#limit` bytes (more if a read
   * overshoots), so a slow ClientHello costs one allocation, not one per segment.
   */
  #append(chunk: Buffer): void {
    const buf = this.#buf;
    if (buf === null) {
      this.#buf = chunk;
      this.#end = chunk.length;
      return;
    }
    const end = this.#end + chunk.length;
    if (end > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(end, this.#limit));
      buf.copy(grown, 0, 0, this.#end);
      this.#buf = grown;
    }
    chunk.copy(this.#buf!, this.#end);
    this.#end = end;
  }

  #finish(found: FoundKey | null): void {
    this.#done = true;
    this.#clearTimer();
    const session = this.#session;
    if (this.#buf !== null) session.pending = this.#buf.subarray(0, this.#end);
    if (session.opening === this) session.endOpening();
    this.#ready(session, found);
  }

  #clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}

function onInspectTimeout(phase: FirstBytesPhase): void {
  phase.timedOut();
}
