import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Privileged tests share the machine's kernel; files run in parallel, each with
    // its own uniquely named namespaces.
    pool: 'forks',
  },
});
