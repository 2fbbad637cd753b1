import { describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import type { KyselyStorage } from "../storage/kysely-storage.js";
import { engineTracker, workflowSource } from "./helpers.js";

const { open } = engineTracker();

/** A module that returns which version it is. */
const returning = (name: string, label: string, extra = "") => workflowSource(name, `return ${JSON.stringify(label)};`, extra);

const storedVersions = async (engine: Engine, name: string) => (await engine.storage.workflowVersions.list(name)).map((v) => v.version);

/** Resolves with the finished run once the engine says it finished (listen before starting it). */
function finished(engine: Engine, runId: string) {
  return engine.events.next("run:finished", (e) => e.run.id === runId).then((e) => e.run);
}

describe("a run executes the workflow version it was triggered with", () => {
  it("keeps a queued run's version after a re-registration and after the workflow is deleted", async () => {
    const { engine } = await open();
    const v1 = (await engine.registry.registerSource("flip", returning("flip", "v1"))).workflow.version;
    const { run: first } = await engine.triggerRun("flip");
    const v2 = (await engine.registry.registerSource("flip", returning("flip", "v2"))).workflow.version;
    const { run: second } = await engine.triggerRun("flip");
    await engine.registry.unregisterSource("flip");
    expect([first.workflowVersion, second.workflowVersion]).toEqual([v1, v2]);
    expect(new Set(await storedVersions(engine, "flip"))).toEqual(new Set([v1, v2]));

    const done = Promise.all([finished(engine, first.id), finished(engine, second.id)]);
    engine.start({ watch: false });
    const [a, b] = await done;
    expect([a.status, a.result, a.workflowVersion]).toEqual(["succeeded", "v1", v1]);
    expect([b.status, b.result, b.workflowVersion]).toEqual(["succeeded", "v2", v2]);
    // The workflow is gone and no run needs its versions any more.
    await engine.registry.settled();
    expect(await storedVersions(engine, "flip")).toEqual([]);
    // Its runs are kept.
    expect((await engine.listRuns({ workflow: "flip", limit: 10 })).map((r) => r.id).sort()).toEqual([first.id, second.id].sort());
  });

  it("resumes a running run of an old version on that version", async () => {
    const { engine } = await open();
    // The first invocation commits a step, then waits until its chunkTimeout ends it; the resume
    // finds the step done and returns.
    const v1Source = workflowSource(
      "resumer",
      `let fresh = false;
       await ctx.step("a", () => { fresh = true; return 1; });
       if (fresh) await new Promise(() => {});
       return "v1";`,
      `\n  chunkTimeout: "300ms",`,
    );
    const v1 = (await engine.registry.registerSource("resumer", v1Source)).workflow.version;
    engine.start({ watch: false });
    const committed = engine.events.next("step:finished", (e) => e.name === "a" && e.status === "succeeded");
    const { run } = await engine.triggerRun("resumer");
    const done = finished(engine, run.id);
    await committed;
    // Registered while the run is running: the run resumes on v1.
    await engine.registry.registerSource("resumer", returning("resumer", "v2"));
    const requeued = await engine.events.next("run:requeued", (e) => e.runId === run.id);
    expect(requeued.reason).toBe("resume");
    const end = await done;
    expect([end.status, end.result, end.workflowVersion]).toEqual(["succeeded", "v1", v1]);
    const { run: later } = await engine.triggerRun("resumer");
    expect((await engine.waitForRun(later.id, 10_000)).result).toBe("v2");
    // v1 went with its last run.
    await engine.registry.settled();
    expect(await storedVersions(engine, "resumer")).not.toContain(v1);
  });

  it("drops old versions once no queued or running run needs them", async () => {
    const { engine } = await open();
    const v1 = (await engine.registry.registerSource("drop", returning("drop", "v1"))).workflow.version;
    const v2 = (await engine.registry.registerSource("drop", returning("drop", "v2"))).workflow.version;
    await engine.registry.settled();
    expect(await storedVersions(engine, "drop")).toEqual([v2]);
    expect(v1).not.toBe(v2);

    const { run } = await engine.triggerRun("drop");
    const v3 = (await engine.registry.registerSource("drop", returning("drop", "v3"))).workflow.version;
    await engine.registry.settled();
    expect(new Set(await storedVersions(engine, "drop"))).toEqual(new Set([v2, v3]));

    const done = finished(engine, run.id);
    engine.start({ watch: false });
    expect((await done).result).toBe("v2");
    await engine.registry.settled();
    expect(await storedVersions(engine, "drop")).toEqual([v3]);
  });

  it("fails a run whose version is no longer stored with WORKFLOW_UNREGISTERED, naming the version in the log", async () => {
    const { engine, logLines } = await open();
    const v1 = (await engine.registry.registerSource("lost", returning("lost", "v1"))).workflow.version;
    const { run } = await engine.triggerRun("lost");
    await engine.registry.registerSource("lost", returning("lost", "v2"));
    // As a database from before versions were kept, or edited by hand, would be.
    await (engine.storage as KyselyStorage).db.deleteFrom("workflow_versions").where("version", "=", v1).execute();
    const done = finished(engine, run.id);
    engine.start({ watch: false });
    const end = await done;
    expect(end.status).toBe("failed");
    expect(end.error?.code).toBe("WORKFLOW_UNREGISTERED");
    expect(logLines().some((l) => l.includes("not stored any more") && l.includes(v1))).toBe(true);
  });

  it("runs a queued run's version on a second engine after a restart", async () => {
    const { engine, dataDir, workflowsDir } = await open();
    const v1 = (await engine.registry.registerSource("lasting", returning("lasting", "v1"))).workflow.version;
    const { run } = await engine.triggerRun("lasting");
    await engine.registry.registerSource("lasting", returning("lasting", "v2"));
    await engine.stop(0);

    const { engine: second } = await open({ dataDir, workflowsDir });
    expect(second.registry.get("lasting")?.sourceKind).toBe("api");
    const done = finished(second, run.id);
    second.start({ watch: false });
    const end = await done;
    expect([end.result, end.workflowVersion]).toEqual(["v1", v1]);
  });

  it("stores a run's version again when another engine swept it between reading the workflow and creating the run", async () => {
    const { engine: first, dataDir, workflowsDir } = await open();
    const v1 = (await first.registry.registerSource("raced", returning("raced", "v1"))).workflow.version;
    const { engine: other } = await open({ dataDir, workflowsDir });
    // Right after this engine read v1 as current, the other replaces it; no run used v1, so it is swept.
    const runs = first.storage.runs as { create: typeof first.storage.runs.create };
    const create = runs.create.bind(runs);
    runs.create = async (run) => {
      await other.registry.registerSource("raced", returning("raced", "v2"));
      await other.registry.settled();
      expect(await other.storage.workflowVersions.get("raced", v1)).toBeUndefined();
      return create(run);
    };
    const { run } = await first.triggerRun("raced");
    expect(run.workflowVersion).toBe(v1);
    const done = finished(other, run.id);
    other.start({ watch: false });
    expect((await done).result).toBe("v1");
  });
});
