/**
 * Loaded into tether by scrape-stall.mjs (`node --import ./loop-probe.mjs dist/cli.js`,
 * with an IPC channel): between {probe: 'start'} and {probe: 'stop'} it times every turn
 * of the event loop (from one check phase to the next: timers, I/O callbacks, and what
 * setImmediate queued, a slice of a scrape included), then answers the longest.
 * Idle otherwise: the setImmediate chain runs only between start and stop.
 */
if (process.send) {
  let running = false;
  let last = 0;
  let longest = 0;
  let turns = 0;
  const tick = () => {
    const now = performance.now();
    if (now - last > longest) longest = now - last;
    turns++;
    last = now;
    if (running) setImmediate(tick);
  };
  process.on('message', (m) => {
    if (m?.probe === 'start') {
      running = true;
      longest = 0;
      turns = 0;
      last = performance.now();
      setImmediate(tick);
    } else if (m?.probe === 'stop') {
      running = false;
      process.send({ probe: 'turns', longest, turns });
    }
  });
  // The channel must not keep tether running once it is told to stop.
  process.channel?.unref();
}
