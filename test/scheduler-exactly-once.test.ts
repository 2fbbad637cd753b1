import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openTestEngine, tempDir, workflowSource, writeFiles } from "./helpers.js";
import { spawnTracked, trackPid } from "./processes.js";

/**
 * Two engine processes on one database (a spawned `bifrost start` and an engine in this process),
 * both firing a per-second schedule: every instant while both run is fired exactly once, and the
 * two share the work.
 */

const BIN = fileURLToPath(new URL("../bin/bifrost.js", import.meta.url));
const INSTANTS = 12;

const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop(0);
});

function startChild(env: Record<string, string>) {
  const child = spawnTracked(process.execPath, [BIN, "start"], {
    env: { ...process.env, NO_COLOR: "1", BIFROST_PORT: "0", LOG_LEVEL: "warn", BIFROST_WATCH: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  const ready = new Promise<number>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on http:\/\/[^\s]+ \(pid (\d+)/.exec(stderr);
      if (m && /workflow\(s\)/.test(stderr)) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`bifrost start exited with ${code}: ${stderr}`)));
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return { child, ready, exited, stderr: () => stderr };
}

describe("exactly once", () => {
  it("two engine processes firing a per-second schedule: every instant once, none twice, none missed", async () => {
    const workflowsDir = tempDir("bifrost-wf-");
    const dataDir = tempDir();
    writeFiles(workflowsDir, { "tick.ts": workflowSource("tick", "return ctx.run.scheduledFor;", `\n  schedule: { cron: "* * * * * *", overlap: "allow" },`) });
    const other = startChild({ BIFROST_DATA_DIR: dataDir, BIFROST_WORKFLOWS_DIR: workflowsDir });
    trackPid(await other.ready);

    const { engine } = await openTestEngine({ dataDir, workflowsDir });
    engines.push(engine);
    // Each instant this engine handled: it created the fire, or found that the other engine had.
    const won: number[] = [];
    const lost: number[] = [];
    let expected = 0;
    engine.events.on("schedule:fired", (e) => won.push(e.scheduledFor));
    const handled = new Promise<void>((resolve) =>
      engine.events.on("schedule:changed", (e) => {
        if (e.workflow !== "tick" || e.nextFireAt === null) return;
        if (e.reason === "synced") lost.push(e.nextFireAt - 1000);
        if (expected === 0 && (e.reason === "fired" || e.reason === "synced")) expected = e.nextFireAt - 1000 + INSTANTS * 1000;
        if (expected !== 0 && e.nextFireAt > expected) resolve();
      }),
    );
    engine.start();
    await handled;
    const first = Math.min(...won, ...lost);
    const last = expected;
    await engine.stop(0);
    engines.splice(0);
    other.child.kill("SIGTERM");
    await other.exited;

    const { engine: reader } = await openTestEngine({ dataDir, workflowsDir });
    engines.push(reader);
    const runs = await reader.storage.runs.list({ workflow: "tick", trigger: "schedule", limit: 200 });
    const counts = new Map<number, number>();
    for (const r of runs) counts.set(r.scheduledFor!, (counts.get(r.scheduledFor!) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1);
    const window = Array.from({ length: (last - first) / 1000 + 1 }, (_, i) => first + i * 1000);
    const missed = window.filter((t) => !counts.has(t));
    expect({ twice, missed }).toEqual({ twice: [], missed: [] });
    expect(window.length).toBeGreaterThanOrEqual(INSTANTS);
    // Both engines created fires: this one won some instants and found others done.
    expect({ won: won.length > 0, lostSome: lost.length > 0 }).toEqual({ won: true, lostSome: true });
  });
});
