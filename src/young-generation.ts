import v8 from 'node:v8';
import type { Config } from './config/types.js';

/**
 * How big V8 lets its young generation grow.
 *
 * A burst of new connections is mostly objects that live (sockets, sessions). V8
 * answers a high survival rate by doubling the young generation, up to 16 MiB per
 * semi-space, and keeps what it grew to for as long as the process runs: at 5,000
 * idle connections that was over 1 KiB per connection (native-bench memory: 8.4 KiB
 * per idle connection, 7.1 with the young generation held at its starting size).
 * tcp mode allocates almost nothing per chunk (relay buffers), so there it costs no
 * measurable throughput; node:http allocates per request, and held small it cost http
 * mode ~9% more CPU per request. So the CLI holds it at its starting size from the
 * first line (`holdYoungGeneration`, before the other modules load, as loading them
 * would grow it), and lets it grow again once a listener runs in http mode
 * (`fitYoungGeneration`). Left alone when the node command line or NODE_OPTIONS
 * already sizes it (`--max-semi-space-size`).
 */

function sizedByUser(): boolean {
  return /semi-space/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`);
}

let held = false;

/** Keep the young generation at its starting size (1 MiB per semi-space). */
export function holdYoungGeneration(): void {
  if (held || sizedByUser()) return;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  held = true;
}

/** Let it grow again (V8's default factor) when any listener runs in http mode. */
export function fitYoungGeneration(config: Config): void {
  if (!held || !config.listeners.some((l) => l.mode === 'http')) return;
  v8.setFlagsFromString('--semi-space-growth-factor=2');
  held = false;
}
