/**
 * Turns check results and passive evidence into up/down state with rise/fall
 * hysteresis, for a set of targets that can change at run time.
 *
 * Rules (docs/routing.md, rule 0): targets start up; `fall` failures in a row mark one
 * down, `rise` successes in a row mark it up again. onChange fires on transitions only.
 *
 * Scheduling: one timer per target, never more than one check of a target in flight
 * (the next is scheduled only when the current one has finished). Timers are passed
 * the target's state as an argument to one handler made per monitor, so a
 * thousand targets cost a thousand timers and no closures.
 */
import type { Logger } from 'pino';
import type { HealthCheck } from '../config/types.js';
import { runCheck, type CheckResult } from './checks.js';
import { asError } from '../errors.js';

export interface HealthTarget {
  /** The upstream's identity; state follows the name across address changes. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface HealthMonitorOptions {
  readonly check: HealthCheck;
  /** Time between the starts of two checks of one target; also the `off` hold-down. */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Successes in a row that mark a down target up. */
  readonly rise: number;
  /** Failures in a row (active or passive) that mark an up target down. */
  readonly fall: number;
  /** Called on transitions only, never for a target's first appearance or removal. */
  readonly onChange: (name: string, up: boolean, reason: string) => void;
  /** The health component's child logger (made once at start-up by the caller). */
  readonly logger?: Logger;
}

export interface TargetHealth {
  readonly name: string;
  readonly up: boolean;
  /** Latest evidence, from a check or from traffic (`passive: ...`). */
  readonly lastReason: string;
  /** Epoch ms when lastReason was recorded; null before any evidence. */
  readonly lastCheckAt: number | null;
}

interface TargetState {
  readonly name: string;
  host: string;
  port: number;
  up: boolean;
  failures: number;
  successes: number;
  lastReason: string;
  lastCheckAt: number | null;
  /** Active mode: the next check. `off` mode: the end of the hold-down. */
  timer: NodeJS.Timeout | null;
  /** The check in flight, if any; aborting it destroys its socket at once. */
  inFlight: AbortController | null;
  removed: boolean;
}

/**
 * Each interval is stretched or shrunk by up to this fraction at random, like
 * HAProxy's `spread-checks`: checks that an event-loop stall bunched together drift
 * apart again instead of firing in lockstep forever.
 */
const SPREAD = 0.05;

export class HealthMonitor {
  readonly #check: HealthCheck;
  readonly #active: boolean;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #rise: number;
  readonly #fall: number;
  readonly #onChange: HealthMonitorOptions['onChange'];
  readonly #log: Logger | null;
  readonly #targets = new Map<string, TargetState>();
  #running = false;

  constructor(options: HealthMonitorOptions) {
    positiveInteger('intervalMs', options.intervalMs);
    positiveInteger('timeoutMs', options.timeoutMs);
    positiveInteger('rise', options.rise);
    positiveInteger('fall', options.fall);
    if (typeof options.onChange !== 'function') throw new TypeError('options.onChange must be a function');
    this.#check = options.check;
    this.#active = options.check.kind !== 'off';
    this.#intervalMs = options.intervalMs;
    this.#timeoutMs = options.timeoutMs;
    this.#rise = options.rise;
    this.#fall = options.fall;
    this.#onChange = options.onChange;
    this.#log = options.logger ?? null;
  }

  /**
   * Replaces the set of targets. New names start up and get their first check at a
   * random point within one interval, so a thousand upstreams added at once (start-up,
   * a reload) do not all connect in the same millisecond. A known name with a new
   * address keeps up/down but restarts its streaks: evidence about the old address
   * says nothing about the new one. Removed names are forgotten, their checks aborted.
   */
  setTargets(targets: readonly HealthTarget[]): void {
    const seen = new Set<string>();
    for (const target of targets) {
      seen.add(target.name);
      const state = this.#targets.get(target.name);
      if (state === undefined) {
        const fresh: TargetState = {
          name: target.name,
          host: target.host,
          port: target.port,
          up: true,
          failures: 0,
          successes: 0,
          lastReason: 'unchecked',
          lastCheckAt: null,
          timer: null,
          inFlight: null,
          removed: false,
        };
        this.#targets.set(target.name, fresh);
        if (this.#running && this.#active) this.#schedule(fresh, Math.random() * this.#intervalMs);
        continue;
      }
      if (state.host === target.host && state.port === target.port) continue;
      this.#log?.info(
        { upstream: state.name, from: `${state.host}:${state.port}`, to: `${target.host}:${target.port}` },
        'health target address changed',
      );
      state.host = target.host;
      state.port = target.port;
      state.failures = 0;
      state.successes = 0;
      if (this.#running && this.#active) {
        this.#cancel(state);
        this.#schedule(state, Math.random() * this.#intervalMs);
      }
    }
    for (const [name, state] of this.#targets) {
      if (seen.has(name)) continue;
      state.removed = true;
      this.#cancel(state);
      this.#targets.delete(name);
    }
  }

  /** Starts checking (or, with `off`, the hold-downs of targets already down). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const state of this.#targets.values()) {
      if (this.#active) this.#schedule(state, Math.random() * this.#intervalMs);
      else if (!state.up) this.#schedule(state, this.#intervalMs);
    }
  }

  /**
   * Clears every timer and aborts every check in flight (their sockets are destroyed
   * synchronously); results that arrive later are ignored. State is kept, and
   * passive reports still count, so start() can resume where this left off.
   */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    for (const state of this.#targets.values()) this.#cancel(state);
  }

  /**
   * Passive evidence: a client connect to this target failed. Counts like a failed
   * check toward `fall`, so an upstream that traffic finds dead goes down within
   * `fall` connects instead of waiting for `fall` intervals. On a down target it
   * restarts the `rise` streak, as a failed check would. Unknown names are ignored
   * (the target may have been removed while the connect was under way).
   */
  reportFailure(name: string, reason: string): void {
    const state = this.#targets.get(name);
    if (state !== undefined) this.#failed(state, `passive: ${reason}`);
  }

  /**
   * Passive evidence: a client connect succeeded. Called per connection, so it only
   * resets the failure streak. It does not raise a down target by itself: with active
   * checks that is `rise` checks' job (one lucky connect is not a recovery). With
   * `off` there is nothing else to raise it, so a success ends the hold-down early.
   */
  reportSuccess(name: string): void {
    const state = this.#targets.get(name);
    if (state === undefined) return;
    state.failures = 0;
    if (this.#active || state.up) return;
    this.#clearTimer(state);
    this.#markUp(state, 'passive: connect ok');
  }

  /** False for a name the monitor does not know. */
  isUp(name: string): boolean {
    return this.#targets.get(name)?.up ?? false;
  }

  snapshot(): TargetHealth[] {
    const out: TargetHealth[] = [];
    for (const s of this.#targets.values()) {
      out.push({ name: s.name, up: s.up, lastReason: s.lastReason, lastCheckAt: s.lastCheckAt });
    }
    return out;
  }

  // --- engine ---------------------------------------------------------------------

  /** One handler for every timer; the target rides along as the timer's argument. */
  readonly #onTimer = (state: TargetState): void => {
    state.timer = null;
    if (!this.#running || state.removed) return;
    if (this.#active) this.#startCheck(state);
    else this.#holdDownOver(state);
  };

  #schedule(state: TargetState, delayMs: number): void {
    this.#clearTimer(state);
    state.timer = setTimeout(this.#onTimer, delayMs, state);
    // The listeners keep the process alive; a monitor left running must not.
    state.timer.unref();
  }

  #clearTimer(state: TargetState): void {
    if (state.timer === null) return;
    clearTimeout(state.timer);
    state.timer = null;
  }

  #cancel(state: TargetState): void {
    this.#clearTimer(state);
    if (state.inFlight !== null) {
      const controller = state.inFlight;
      state.inFlight = null; // before abort(): the result it produces must be ignored
      controller.abort();
    }
  }

  #startCheck(state: TargetState): void {
    const controller = new AbortController();
    state.inFlight = controller;
    const startedAt = performance.now();
    // runCheck reads the address synchronously, so a later address change cannot
    // leak into this check; its result is dropped by #checkDone instead.
    runCheck(this.#check, state, this.#timeoutMs, controller.signal).then((result) =>
      this.#checkDone(state, controller, startedAt, result),
    );
  }

  #checkDone(state: TargetState, controller: AbortController, startedAt: number, result: CheckResult): void {
    // Aborted by stop(), removal or an address change: someone else owns the state now.
    if (state.inFlight !== controller) return;
    state.inFlight = null;
    if (result.ok) this.#succeeded(state, result.reason);
    else this.#failed(state, result.reason);
    // onChange may have stopped us, removed this target or rescheduled it.
    if (!this.#running || state.removed || state.timer !== null || state.inFlight !== null) return;
    // Fixed rate from the start of this check: a slow answer does not stretch the
    // interval, so `fall` failures take about fall x intervalMs whatever the timeout.
    const spread = 1 + SPREAD * (2 * Math.random() - 1);
    const elapsed = performance.now() - startedAt;
    this.#schedule(state, Math.max(0, this.#intervalMs * spread - elapsed));
  }

  #succeeded(state: TargetState, reason: string): void {
    state.failures = 0;
    state.successes++;
    state.lastReason = reason;
    state.lastCheckAt = Date.now();
    if (!state.up && state.successes >= this.#rise) this.#markUp(state, reason);
  }

  #failed(state: TargetState, reason: string): void {
    state.successes = 0;
    state.failures++;
    state.lastReason = reason;
    state.lastCheckAt = Date.now();
    this.#log?.debug({ upstream: state.name, address: `${state.host}:${state.port}`, reason, failures: state.failures }, 'health check failed');
    if (!state.up || state.failures < this.#fall) return;
    state.up = false;
    // With `off` nothing probes the target, so it comes back after a hold-down of one
    // interval, as nginx's max_fails/fail_timeout does. Set before onChange, which may
    // stop the monitor or remove the target and so clear it again.
    if (!this.#active && this.#running) this.#schedule(state, this.#intervalMs);
    this.#log?.warn({ upstream: state.name, address: `${state.host}:${state.port}`, reason }, 'upstream down');
    this.#emit(state, false, reason);
  }

  /**
   * End of an `off` hold-down. The target returns on probation with fall - 1 failures
   * already counted, so the first failed connect sends it straight back down; a
   * success (reportSuccess) clears the count. This is nginx's behaviour: after
   * fail_timeout a peer gets one trial, and `fails` is only reset by a success.
   */
  #holdDownOver(state: TargetState): void {
    if (state.up) return;
    state.failures = this.#fall - 1;
    this.#markUp(state, `hold-down of ${this.#intervalMs}ms over`);
  }

  #markUp(state: TargetState, reason: string): void {
    state.up = true;
    state.successes = 0;
    this.#log?.info({ upstream: state.name, address: `${state.host}:${state.port}`, reason }, 'upstream up');
    this.#emit(state, true, reason);
  }

  #emit(state: TargetState, up: boolean, reason: string): void {
    try {
      this.#onChange(state.name, up, reason);
    } catch (err) {
      // A throwing listener must not stop health checking (from a check's callback it
      // would otherwise be an unhandled rejection that kills the balancer).
      if (this.#log !== null) this.#log.error({ err, upstream: state.name }, 'health onChange listener threw');
      else process.emitWarning(asError(err), 'TetherHealthWarning');
    }
  }
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`options.${name} must be a positive integer, got ${String(value)}`);
  }
}
