import { defineConfig } from 'vitest/config';

// One project per test folder: test/unit, test/integration, test/e2e, test/faults.
// Shared helpers live in test/support; a test file imports from its own folder,
// test/support, src/ and dev/, never from another test folder.
//
// Unit tests need no server. Integration and end-to-end tests share one pair of
// real servers: both projects name the same global setup, which starts the pair
// once and stops it after the last of them (test/support/global-setup.ts).
//
// Every server-backed project turns file parallelism off. Vitest puts the files
// of all such projects (same default sequence.groupOrder) in one sequential
// group after the unit tests, so integration, e2e and fault files run one at a
// time, never two at once on the CPU.
const serverBacked = {
  testTimeout: 120_000,
  hookTimeout: 180_000,
  fileParallelism: false,
};

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          ...serverBacked,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          ...serverBacked,
        },
      },
      {
        // The fault suite kills and restarts servers, so every file starts its own
        // embedded ClickHouse and Kafka (test/faults/harness.ts), no global setup.
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          ...serverBacked,
          testTimeout: 360_000,
        },
      },
    ],
  },
});
