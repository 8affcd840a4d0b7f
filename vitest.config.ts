import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Installs or unpacks what tests need beyond Node and npm (redis-server, a browser).
    globalSetup: ['test/setup/global.ts'],
    // Integration tests bind real sockets and spawn real processes: forks isolate them.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more parallel files only make socket timings noisy.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
