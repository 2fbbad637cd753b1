#!/usr/bin/env node
// Runs a TypeScript entry point with the flags the engine needs: isolated-vm requires
// --no-node-snapshot on Node 20, and tsx compiles the sources on the fly.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { resolve } from "node:path";

const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error("usage: run-ts.js <file.ts> [args...]");
  process.exit(2);
}
const tsx = import.meta.resolve("tsx");
const child = spawn(process.execPath, ["--no-node-snapshot", "--import", tsx, resolve(script), ...args], { stdio: "inherit", detached: true });
// The child has its own process group, so a terminal's Ctrl-C reaches only this process and every
// signal is delivered to the child exactly once, by us.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 1)));
