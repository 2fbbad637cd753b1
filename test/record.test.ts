import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openTestEngine, workflowSource } from "./helpers.js";

const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop(0).catch(() => {});
});

describe("recording an invocation's decision", () => {
  it("ends the run as INTERNAL when storage fails in an unexpected way, instead of re-running it on every lease", async () => {
    const { engine } = await openTestEngine({ workflows: { "ok.ts": workflowSource("ok", "return 1;") } });
    engines.push(engine);
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
    const { engine } = await openTestEngine({ workflows: { "deep.ts": `import { workflow } from "bifrost";\nexport default workflow({ name: "deep", params: { type: "object", default: ${deep} }, async run() {} });\n` } });
    engines.push(engine);
    const [problem] = engine.registry.problems();
    expect(problem?.error).toMatchObject({ code: "WORKFLOW_INVALID", message: expect.stringMatching(/deep\.ts: the workflow definition was refused: .*deep/) });
  });
});
