/**
 * Event-loop delay, sampled only while the loop has work to delay.
 *
 * Node's `monitorEventLoopDelay` (and prom-client's nodejs_eventloop_lag_* family,
 * built on one of its own) fires a timer every 10 ms for as long as the process runs:
 * an idle tether process woke 100 times a second for it, and every worker, the control
 * plane and the standby did so alike. Here one sampler serves the whole process:
 *
 * - While the loop is busy, a timer every RESOLUTION_MS records the time since its
 *   previous call, as monitorEventLoopDelay's does (a late call is the delay); a check
 *   every CHECK_MS hands the samples to every reader.
 * - A check that finds the loop idle since the previous one stops the timer: fewer
 *   than IDLE_EVENTS_PER_S I/O events a second (libuv's count: the timer's own wakes
 *   are not I/O) and no sample delayed by STALL_MS or more.
 * - While the timer is off, each check records what it would have read: one sample of
 *   the period plus all the work the loop did meanwhile (eventLoopUtilization, which
 *   the timer no longer inflates), as if that work had been a single stall (the worst
 *   case: a stall delays one call of the timer, once), and an undelayed sample (the
 *   period) for every other period. I/O starts the timer again.
 *
 * So an idle process wakes once a check, percentiles mean what they meant with the
 * timer always on, and a stall in an idle stretch is not missed. A reader reads every
 * sample since its previous read, whoever else reads.
 */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';

/** Sampling period (ms) while the loop is busy: fine enough to see stalls. */
export const RESOLUTION_MS = 10;
/** How often the sampler hands samples on and decides whether to keep sampling. */
const CHECK_MS = 1_000;
/** Fewer I/O events a second than this, and the loop counts as idle. */
const IDLE_EVENTS_PER_S = 20;
/** A sample delayed this much (ms) keeps the timer running (less is a timer's jitter). */
const STALL_MS = 5;

const NS_PER_MS = 1e6;

/** What the sampler reads of the process (tests give their own). */
export interface LoopProbe {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Milliseconds the loop has spent working (not waiting for I/O) so far. */
  activeMs(): number;
  /** libuv's count of I/O events so far, or null where this Node has none (the timer then never stops). */
  ioEvents(): number | null;
}

interface UvMetrics {
  readonly events: number;
}

const processProbe: LoopProbe = {
  now: () => performance.now(),
  activeMs: () => performance.eventLoopUtilization().active,
  ioEvents: () => {
    const info = (performance.nodeTiming as { uvMetricsInfo?: UvMetrics }).uvMetricsInfo;
    return typeof info?.events === 'number' ? info.events : null;
  },
};

/** A reader's view: every sample since its previous `take()`. */
export interface LoopDelayReader {
  /** The samples since the previous take (ns, as monitorEventLoopDelay's); reset it once read. */
  take(): RecordableHistogram;
  /** Stop receiving samples (the last reader stops the sampler). */
  close(): void;
}

export class LoopDelaySampler {
  readonly #probe: LoopProbe;
  readonly #readers = new Set<RecordableHistogram>();
  /** The timer's samples since the last flush. */
  readonly #sampled: RecordableHistogram = createHistogram();
  /** Samples made up for a window the timer was off. */
  readonly #synthetic: RecordableHistogram = createHistogram();
  #timer: NodeJS.Timeout | null = null;
  #lastTick = 0;
  #check: NodeJS.Timeout | null = null;
  #windowStart = 0;
  #windowActive = 0;
  #windowEvents: number | null = null;
  /** The timer saw a delay of STALL_MS or more in this window. */
  #delayed = false;

  constructor(probe: LoopProbe = processProbe) {
    this.#probe = probe;
  }

  /** A reader of every sample from now on. */
  reader(): LoopDelayReader {
    const histogram = createHistogram();
    if (this.#readers.size === 0) this.#start();
    else this.flush(); // samples made before this reader came are not its own
    this.#readers.add(histogram);
    let open = true;
    return {
      take: () => {
        if (open) this.flush();
        return histogram;
      },
      close: () => {
        if (open) this.#remove(histogram);
        open = false;
      },
    };
  }

  /** Whether the RESOLUTION_MS timer runs now (off while the loop is idle). */
  get sampling(): boolean {
    return this.#timer !== null;
  }

  /** Hand every sample so far to the readers; sample on while there is I/O or delay. */
  flush(): void {
    const probe = this.#probe;
    const now = probe.now();
    const elapsedMs = now - this.#windowStart;
    const sampling = this.#timer !== null;
    // A window shorter than a period (reads close together) is left to grow, but
    // the timer's samples so far are handed on.
    if (elapsedMs < RESOLUTION_MS) {
      if (sampling) this.#handOn(this.#sampled);
      return;
    }
    const active = probe.activeMs();
    const events = probe.ioEvents();
    const activeMs = active - this.#windowActive;
    const quiet = events !== null && this.#windowEvents !== null && events - this.#windowEvents < (IDLE_EVENTS_PER_S * elapsedMs) / 1000;
    this.#windowStart = now;
    this.#windowActive = active;
    this.#windowEvents = events;
    this.#handOn(sampling ? this.#sampled : this.#synthesize(elapsedMs, activeMs));
    const delayed = sampling && this.#delayed;
    this.#delayed = false;
    // I/O keeps the loop busy again and again; work without I/O (a timer's, a question
    // answered) was recorded as it is, so only a delay seen while sampling keeps it on.
    this.#setOn(!quiet || delayed);
  }

  #handOn(source: RecordableHistogram): void {
    if (source.count === 0) return;
    if (source === this.#sampled && source.max >= (RESOLUTION_MS + STALL_MS) * NS_PER_MS) this.#delayed = true;
    for (const reader of this.#readers) reader.add(source);
    source.reset();
  }

  /** What the timer would have recorded over an off window: the work as one stall, undelayed periods besides. */
  #synthesize(elapsedMs: number, activeMs: number): RecordableHistogram {
    const periods = Math.max(1, Math.floor((elapsedMs - activeMs) / RESOLUTION_MS));
    const period = RESOLUTION_MS * NS_PER_MS;
    for (let i = 1; i < periods; i++) this.#synthetic.record(period);
    this.#synthetic.record(Math.round((RESOLUTION_MS + activeMs) * NS_PER_MS));
    return this.#synthetic;
  }

  #remove(histogram: RecordableHistogram): void {
    if (!this.#readers.delete(histogram) || this.#readers.size > 0) return;
    if (this.#check !== null) clearInterval(this.#check);
    this.#check = null;
    this.#setOn(false);
  }

  #start(): void {
    this.#windowStart = this.#probe.now();
    this.#windowActive = this.#probe.activeMs();
    this.#windowEvents = this.#probe.ioEvents();
    // Sampling from the start: a process that has just started is rarely idle.
    this.#setOn(true);
    this.#check = setInterval(() => this.flush(), CHECK_MS);
    this.#check.unref();
  }

  #setOn(on: boolean): void {
    if (on === (this.#timer !== null)) return;
    if (on) {
      this.#lastTick = performance.now();
      this.#timer = setInterval(this.#tick, RESOLUTION_MS);
      this.#timer.unref();
    } else {
      clearInterval(this.#timer!);
      this.#timer = null;
      this.#sampled.reset();
      this.#delayed = false;
    }
  }

  readonly #tick = (): void => {
    const now = performance.now();
    this.#sampled.record(Math.max(1, Math.round((now - this.#lastTick) * NS_PER_MS)));
    this.#lastTick = now;
  };
}

/** The process's sampler: every Metrics in the process reads it. */
const sampler = new LoopDelaySampler();

/** A reader of this process's event-loop delay samples. */
export function loopDelayReader(): LoopDelayReader {
  return sampler.reader();
}
