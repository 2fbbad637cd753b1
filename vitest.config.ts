import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // isolated-vm needs --no-node-snapshot, which worker threads reject: use forked processes.
    pool: "forks",
    execArgv: ["--no-node-snapshot"],
    // A safety net for hung suites, not a speed assertion: tests wait on events.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
