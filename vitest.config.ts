import { defineConfig } from 'vitest/config';

// Two projects: `fast` (unit tests, seconds) and `e2e` (real nx in a temp copy
// of the workspace, real browser). `npm test` runs both.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'fast',
          // The caller's META_ANALYSIS_* and provider variables never reach a test.
          setupFiles: ['test/helpers/hermetic-env.ts'],
          // Two workers even on two cores (vitest's default leaves one core free): the tier stays under a minute there.
          pool: 'threads',
          maxWorkers: 2,
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**'],
        },
      },
      {
        test: {
          name: 'e2e',
          setupFiles: ['test/helpers/hermetic-env.ts'],
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
