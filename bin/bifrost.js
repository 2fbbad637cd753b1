#!/usr/bin/env node
// The `bifrost` command. Re-executes Node with --no-node-snapshot (required by isolated-vm on
// Node 20) and the tsx loader, then hands over to the CLI.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../engine/cli/main.ts", import.meta.url));
const tsx = import.meta.resolve("tsx");
const child = spawn(process.execPath, ["--no-node-snapshot", "--import", tsx, main, ...process.argv.slice(2)], { stdio: "inherit", detached: true });
// The child has its own process group, so a terminal's Ctrl-C reaches only this process and every
// signal is delivered to the child exactly once, by us.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 1)));
