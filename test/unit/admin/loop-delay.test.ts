import { afterEach, describe, expect, it } from 'vitest';
import { LoopDelaySampler, RESOLUTION_MS, type LoopDelayReader, type LoopProbe } from '../../../src/admin/loop-delay.js';

/** A process as the sampler reads it, moved by hand: time, work and I/O events. */
class FakeProbe implements LoopProbe {
  time = 0;
  active = 0;
  events: number | null = 0;
  now(): number {
    return this.time;
  }
  activeMs(): number {
    return this.active;
  }
  ioEvents(): number | null {
    return this.events;
  }
  /** `ms` pass, `workMs` of them working, with `events` I/O events. */
  pass(ms: number, workMs = 0, events = 0): void {
    this.time += ms;
    this.active += workMs;
    if (this.events !== null) this.events += events;
  }
}

const MS = 1e6;
const readers: LoopDelayReader[] = [];

function started(probe: FakeProbe): { sampler: LoopDelaySampler; reader: LoopDelayReader } {
  const sampler = new LoopDelaySampler(probe);
  const reader = sampler.reader();
  readers.push(reader);
  return { sampler, reader };
}

/** Turn the timer off: a quiet second. */
function quieten(sampler: LoopDelaySampler, probe: FakeProbe, reader: LoopDelayReader): void {
  probe.pass(1_000, 0.5, 2);
  sampler.flush();
  expect(sampler.sampling).toBe(false);
  reader.take().reset();
}

afterEach(() => {
  for (const reader of readers.splice(0)) reader.close();
});

describe('LoopDelaySampler', () => {
  it('samples from the start, and stops once a second passes with little I/O and no delay', () => {
    const probe = new FakeProbe();
    const { sampler, reader } = started(probe);
    expect(sampler.sampling).toBe(true);
    probe.pass(1_000, 0.5, 19);
    sampler.flush();
    expect(sampler.sampling).toBe(false);
    // I/O at 20 events a second or more starts it again.
    probe.pass(1_000, 2, 20);
    reader.take();
    expect(sampler.sampling).toBe(true);
    probe.pass(1_000, 2, 19);
    reader.take();
    expect(sampler.sampling).toBe(false);
  });

  it('records an idle stretch as undelayed periods, and its work as one stall of all of it', () => {
    const probe = new FakeProbe();
    const { sampler, reader } = started(probe);
    quieten(sampler, probe, reader);
    // 2 s, 300 ms of it working without I/O (an inline build, say).
    probe.pass(2_000, 300, 0);
    const h = reader.take();
    expect(h.count).toBe(170); // (2,000 - 300) / 10 samples, one of them the stall
    expect(h.max).toBeGreaterThanOrEqual(309 * MS);
    expect(h.max).toBeLessThanOrEqual(311 * MS);
    expect(h.min).toBeGreaterThanOrEqual(9.9 * MS);
    expect(h.percentile(50)).toBeLessThanOrEqual(10.1 * MS);
    h.reset();
    // Work without I/O was recorded as it was: nothing to sample.
    expect(sampler.sampling).toBe(false);
    // A stall with few samples around it is the p99, as the timer would have read it.
    probe.pass(390, 300, 0);
    const few = reader.take();
    expect(few.count).toBe(9);
    expect(few.percentile(99)).toBeGreaterThanOrEqual(309 * MS);
    few.reset();
  });

  it('records nothing for a window shorter than a period, and every reader gets every sample once', () => {
    const probe = new FakeProbe();
    const { sampler, reader } = started(probe);
    quieten(sampler, probe, reader);
    const second = sampler.reader();
    readers.push(second);
    probe.pass(5, 1, 0);
    expect(reader.take().count).toBe(0);
    probe.pass(1_000, 0, 0);
    expect(reader.take().count).toBe(100);
    // The second reader got the same samples, though it read only now.
    expect(second.take().count).toBe(100);
    reader.take().reset();
    expect(second.take().count).toBe(100);
  });

  it('keeps sampling while the timer sees delays, though there is no I/O', async () => {
    const probe = new FakeProbe();
    const { sampler, reader } = started(probe);
    expect(sampler.sampling).toBe(true);
    await new Promise((r) => setTimeout(r, 3 * RESOLUTION_MS));
    // Block the loop: the call due meanwhile comes at its end, 30 ms or more after the one before.
    const until = performance.now() + 30;
    while (performance.now() < until) {
      // busy
    }
    await new Promise((r) => setTimeout(r, 2 * RESOLUTION_MS));
    probe.pass(1_000, 0.5, 0);
    const h = reader.take();
    expect(h.max).toBeGreaterThanOrEqual(29.5 * MS);
    expect(sampler.sampling).toBe(true);
    h.reset();
    // The timer's next calls, as this machine runs them: it keeps sampling exactly
    // when one of them came 5 ms or more late (a loaded host's jitter can be that).
    await new Promise((r) => setTimeout(r, 5 * RESOLUTION_MS));
    probe.pass(1_000, 0.5, 0);
    const calm = reader.take();
    expect(calm.count).toBeGreaterThan(0);
    expect(sampler.sampling).toBe(calm.max >= (RESOLUTION_MS + 5) * MS);
    calm.reset();
    // A quiet window in which the timer saw no delay (read at once: none of its calls
    // came since) leaves it stopped, or stops it.
    probe.pass(1_000, 0.5, 0);
    sampler.flush();
    expect(sampler.sampling).toBe(false);
  });

  it('never stops where Node counts no I/O events', () => {
    const probe = new FakeProbe();
    probe.events = null;
    const { sampler, reader } = started(probe);
    probe.pass(1_000, 0, 0);
    reader.take();
    expect(sampler.sampling).toBe(true);
  });

  it('stops its timers when the last reader closes', () => {
    const probe = new FakeProbe();
    const { sampler, reader } = started(probe);
    const other = sampler.reader();
    other.close();
    expect(sampler.sampling).toBe(true);
    reader.close();
    expect(sampler.sampling).toBe(false);
    // A closed reader reads what it had, nothing more.
    expect(reader.take().count).toBe(0);
  });
});
