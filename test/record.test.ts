import { describe, expect, it } from "vitest";
import { engineTracker, workflowSource } from "./helpers.js";

const { open } = engineTracker();

describe("recording an invocation's decision", () => {
  it("ends the run as INTERNAL when storage fails in an unexpected way, instead of re-running it on every lease", async () => {
    const { engine } = await open({ workflows: { "ok.ts": workflowSource("ok", "return 1;") } });
    const runs = engine.storage.runs;
    const finish = runs.finish.bind(runs);
    let calls = 0;
    runs.finish = async (lease, outcome) => {
      calls += 1;
      if (calls === 1) throw new TypeError("a bug in a storage driver");
      return finish(lease, outcome);
    };
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("ok");
    const finished = await engine.waitForRun(run.id, 30_000);
    expect(finished).toMatchObject({ status: "failed", attempt: 1, error: { code: "INTERNAL", message: expect.stringContaining("a bug in a storage driver") } });
    expect(calls).toBe(2);
  });

  it("names the bound a module's definition broke", async () => {
    const deep = `{"a":`.repeat(80) + "1" + "}".repeat(80);
    const { engine } = await open({ workflows: { "deep.ts": `import { workflow } from "bifrost";\nexport default workflow({ name: "deep", params: { type: "object", default: ${deep} }, async run() {} });\n` } });
    const [problem] = engine.registry.problems();
    expect(problem?.error).toMatchObject({ code: "WORKFLOW_INVALID", message: expect.stringMatching(/deep\.ts: the workflow definition was refused: .*deep/) });
  });
});
