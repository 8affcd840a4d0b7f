/**
 * TableBuilders that wrap a real one (worker threads or inline) to let tests count,
 * hold back or fail builds. They implement tether's own interface; nothing of Node or
 * piscina is faked.
 */
import { RingBuildError } from '../../../src/errors.js';
import type { BuildRequest, BuiltTable, TableBuilder } from '../../../src/builders/types.js';

export class CountingBuilder implements TableBuilder {
  readonly kind: 'workers' | 'inline';
  readonly requests: BuildRequest[] = [];
  readonly #inner: TableBuilder;
  constructor(inner: TableBuilder) {
    this.#inner = inner;
    this.kind = inner.kind;
  }
  build(request: BuildRequest): Promise<BuiltTable> {
    this.requests.push(request);
    return this.#inner.build(request);
  }
  forget(key: string): void {
    this.#inner.forget(key);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** Holds every build until release() (or while `held`), as a slow build would. */
export class GatedBuilder implements TableBuilder {
  readonly kind: 'workers' | 'inline';
  held = true;
  readonly #inner: TableBuilder;
  readonly #waiting: (() => void)[] = [];
  constructor(inner: TableBuilder) {
    this.#inner = inner;
    this.kind = inner.kind;
  }
  get waiting(): number {
    return this.#waiting.length;
  }
  async build(request: BuildRequest): Promise<BuiltTable> {
    if (this.held) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return this.#inner.build(request);
  }
  /** Let the builds waiting now go; with `open`, let every later one through at once. */
  release(open = false): void {
    if (open) this.held = false;
    for (const go of this.#waiting.splice(0)) go();
  }
  forget(key: string): void {
    this.#inner.forget(key);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** Fails the first `failures` builds as a crashed worker would. */
export class FailingBuilder implements TableBuilder {
  readonly kind: 'workers' | 'inline';
  failures: number;
  attempts = 0;
  readonly #inner: TableBuilder;
  constructor(inner: TableBuilder, failures: number) {
    this.#inner = inner;
    this.kind = inner.kind;
    this.failures = failures;
  }
  build(request: BuildRequest): Promise<BuiltTable> {
    this.attempts++;
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(new RingBuildError('ring build worker failed: worker exited (code 1)'));
    }
    return this.#inner.build(request);
  }
  forget(key: string): void {
    this.#inner.forget(key);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
