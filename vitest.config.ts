import { defineConfig } from 'vitest/config';

// Unit tests need no server. Integration and end-to-end tests share one pair of
// real servers started by the global setup (see test/support/global-setup.ts).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        // The fault suite kills and restarts servers, so every file starts its own
        // embedded ClickHouse and Kafka (test/faults/harness.ts), no global setup.
        // Without file parallelism vitest runs these files one at a time, in the
        // same sequential group as the integration files, so no two server pairs
        // compete for the CPU.
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          testTimeout: 360_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
