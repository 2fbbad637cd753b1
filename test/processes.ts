import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";

/**
 * Processes a test starts, and the processes those start (the `bifrost` launcher runs the engine
 * as a child in its own process group): after each test every one of them is killed by pid,
 * whatever the test did, so a failing test never leaves an engine holding a port or a lease.
 */
const launched = new Set<ChildProcess>();
/** pid → its start time, so that a pid reused by an unrelated process is never killed. */
const known = new Map<number, string | undefined>();

afterEach(killStarted);

/** spawn(), with the process and everything it starts ended after the test. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  launched.add(child);
  if (child.pid !== undefined) remember(child.pid);
  // Once it has written anything, its own children (the engine) exist: note them while we can.
  const note = () => noteDescendants(child);
  child.stdout?.on("data", note);
  child.stderr?.on("data", note);
  return child;
}

/** The `bifrost` command of this checkout. */
export const BIFROST_BIN = fileURLToPath(new URL("../bin/bifrost.js", import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one `bifrost` command to its end (tracked like every spawn here) and collects its output.
 * `nodeArgs` go before the launcher: `--no-node-snapshot` makes it run the CLI in its own process.
 */
export function runBifrost(args: string[], env: Record<string, string>, options: { nodeArgs?: string[] } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(process.execPath, [...(options.nodeArgs ?? []), BIFROST_BIN, ...args], { env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Also ends `pid` after the test (a process found by its output, such as the engine). */
export function trackPid(pid: number): void {
  remember(pid);
}

function remember(pid: number): void {
  if (!known.has(pid)) known.set(pid, statField(pid, STARTTIME));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // An exited process not yet reaped by its parent is gone for every purpose here.
  return statField(pid, STATE) !== "Z";
}

/**
 * Resolves once `pid` has exited. The process is not our child (no exit event reaches us), so
 * this asks the OS until it is gone; the test's timeout bounds the wait.
 */
export async function waitUntilGone(pid: number): Promise<void> {
  while (isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** The pids `pid` started, and theirs (Linux /proc; empty elsewhere). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const current = queue.shift()!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${current}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      let children = "";
      try {
        children = readFileSync(`/proc/${current}/task/${task}/children`, "utf8");
      } catch {
        continue;
      }
      for (const child of children.split(/\s+/).filter(Boolean).map(Number)) {
        out.push(child);
        queue.push(child);
      }
    }
  }
  return out;
}

function noteDescendants(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  for (const pid of descendants(child.pid)) remember(pid);
}

/** Fields of /proc/<pid>/stat counted from the state (field 3), which follows "pid (comm) ". */
const STATE = 0;
const STARTTIME = 19;

function statField(pid: number, index: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may contain spaces and parentheses: the fields start after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[index];
  } catch {
    return undefined;
  }
}

/** Kills every process started by the test (and their descendants) and waits until they are gone. */
export async function killStarted(): Promise<void> {
  for (const child of launched) noteDescendants(child);
  // Only processes that are still the ones we noted (same start time).
  const pids = [...known].filter(([pid, started]) => started === undefined || statField(pid, STARTTIME) === started).map(([pid]) => pid);
  launched.clear();
  known.clear();
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await Promise.all(pids.map(waitUntilGone));
}
