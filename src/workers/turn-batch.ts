/**
 * Messages sent together once per event-loop turn. Each IPC send is a system call
 * and wakes the other process; a turn that learns many new pins (a burst of new
 * sessions) would otherwise pay that per pin on both sides. Used for the pin traffic
 * only; the sender flushes before any other message, so order across kinds holds.
 */
export class TurnBatch<M> {
  readonly #write: (items: M[]) => void;
  #items: M[] = [];
  #scheduled = false;

  /** `write`: sends one turn's items, in order, as one message. */
  constructor(write: (items: M[]) => void) {
    this.#write = write;
  }

  add(item: M): void {
    this.#items.push(item);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(flushBatch, this);
  }

  /** Send what is queued now (before another message, or before the channel closes). */
  flush(): void {
    if (this.#items.length === 0) return;
    const items = this.#items;
    this.#items = [];
    this.#write(items);
  }

  /** The scheduled flush (module-level, so a turn costs no closure). */
  scheduledFlush(): void {
    this.#scheduled = false;
    this.flush();
  }
}

function flushBatch(batch: { scheduledFlush(): void }): void {
  batch.scheduledFlush();
}
