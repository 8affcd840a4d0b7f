import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests bind real sockets and spawn real processes: forks isolate them.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more parallel files only make socket timings noisy.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
