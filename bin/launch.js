// Starts a TypeScript entry point with what the engine needs: isolated-vm requires Node started with
// --no-node-snapshot (Node 20), and tsx compiles the sources on the fly.
//
// The engine must never outlive the command that started it. When this node already has the flag
// (`npm start` passes it), the entry runs in this very process. Otherwise it runs in a child that
// holds an IPC channel to us: parent-guard.js (preloaded in the child) stops the child as soon as
// the channel closes, which the OS does when we die, even by SIGKILL.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { pathToFileURL } from "node:url";

const NO_SNAPSHOT = "--no-node-snapshot";

function hasNoSnapshotFlag() {
  return process.execArgv.includes(NO_SNAPSHOT) || (process.env.NODE_OPTIONS ?? "").split(/\s+/).includes(NO_SNAPSHOT);
}

/** Runs `entry` (an absolute path) with `args` as its process.argv.slice(2). */
export async function launch(entry, args) {
  if (hasNoSnapshotFlag()) {
    // Registers tsx's loader for the imports that follow (a no-op when --import tsx already did).
    await import("tsx");
    process.argv = [process.argv[0], entry, ...args];
    await import(pathToFileURL(entry).href);
    return;
  }
  const guard = new URL("./parent-guard.js", import.meta.url).href;
  const child = spawn(process.execPath, [NO_SNAPSHOT, "--import", import.meta.resolve("tsx"), "--import", guard, entry, ...args], {
    stdio: ["inherit", "inherit", "inherit", "ipc"],
    // The child has its own process group, so a terminal's Ctrl-C reaches only this process and
    // every signal is delivered to the child exactly once, by us.
    detached: true,
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("error", (err) => {
    process.stderr.write(`error INTERNAL: cannot start ${entry}: ${err.message}\n`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 1)));
}
