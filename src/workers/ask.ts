/**
 * Questions over IPC that may go unanswered: each waits at most its timeout, then
 * resolves null (a worker busy, dying or gone must not hang an admin call).
 */
interface Pending<A> {
  /** Whom it was asked of: a worker that exits answers all its questions with null at once. */
  readonly of: object;
  readonly resolve: (answer: A | null) => void;
  readonly timer: NodeJS.Timeout;
}

/** `M`: each topic's answer (messages.ts: Answers, PinAnswers). */
export class Asker<M extends object> {
  readonly #pending = new Map<number, Pending<M[keyof M]>>();
  #next = 0;

  /** `send` delivers the question with the id given; false when it could not be sent. */
  ask<T extends keyof M>(of: object, send: (id: number) => boolean, timeoutMs: number): Promise<M[T] | null> {
    const id = ++this.#next;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#settle(id, null), timeoutMs);
      this.#pending.set(id, { of, resolve: resolve as (answer: M[keyof M] | null) => void, timer });
      if (!send(id)) this.#settle(id, null);
    });
  }

  /** An answer came (late ones, already given up on, are dropped). */
  answered(id: number, answer: M[keyof M]): void {
    this.#settle(id, answer);
  }

  /** `of` is gone: its questions are answered null now rather than at their timeout. */
  forget(of: object): void {
    for (const [id, pending] of this.#pending) if (pending.of === of) this.#settle(id, null);
  }

  #settle(id: number, answer: M[keyof M] | null): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(answer);
  }
}
