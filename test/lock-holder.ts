import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./fixtures/hold-lock.mjs", import.meta.url));

/** A real second process holding the engine's SQLite file, as another program or a backup would. */
export interface LockHolder {
  lock(): Promise<void>;
  release(): Promise<void>;
  /** Ends the process whatever state it is in (its lock goes with it). */
  kill(): void;
}

export async function spawnLockHolder(file: string): Promise<LockHolder> {
  const child: ChildProcess = spawn(process.execPath, [SCRIPT, file], { stdio: ["pipe", "pipe", "inherit"] });
  const replies: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else replies.push(line);
  });
  const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`lock holder exited (${code})`))));
  exited.catch(() => {});
  const nextLine = () => Promise.race([new Promise<string>((resolve) => (replies.length > 0 ? resolve(replies.shift()!) : waiting.push(resolve))), exited]);
  const command = async (cmd: string, expected: string) => {
    child.stdin!.write(`${cmd}\n`);
    const line = await nextLine();
    if (line !== expected) throw new Error(`lock holder answered "${line}" to "${cmd}"`);
  };
  const ready = await nextLine();
  if (ready !== "ready") throw new Error(`lock holder said "${ready}"`);
  return {
    lock: () => command("lock", "locked"),
    release: () => command("release", "released"),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
