import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests mount loop images and start containers; two cores do not gain from more.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
