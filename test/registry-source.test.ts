import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_SOURCE_BYTES } from "../engine/registry/registry.js";
import { engineTracker, tempDir, workflowSource } from "./helpers.js";

const { open } = engineTracker();

const rejection = (promise: Promise<unknown>) => promise.then(() => expect.unreachable("accepted"), (err: unknown) => err as { code: string; message: string; details?: Record<string, unknown>; fix: string });

describe("registering a module sent as text", () => {
  it("refuses a name that is not a workflow name, and text over 1 MB, before compiling", async () => {
    const { engine } = await open();
    expect(await rejection(engine.registry.registerSource("Bad Name", workflowSource("bad", "return 1;")))).toMatchObject({ code: "WORKFLOW_INVALID", message: '"Bad Name" is not a valid workflow name' });
    const big = workflowSource("big", "return 1;") + `// ${"x".repeat(MAX_SOURCE_BYTES)}\n`;
    const tooBig = await rejection(engine.registry.registerSource("big", big));
    expect(tooBig).toMatchObject({ code: "PAYLOAD_TOO_LARGE", details: { file: "big.ts", limit: MAX_SOURCE_BYTES } });
    expect(tooBig.fix).toMatch(/smaller/);
    // Bytes, not characters: two-byte characters count twice.
    const wide = workflowSource("wide", "return 1;") + `// ${"é".repeat(MAX_SOURCE_BYTES / 2)}\n`;
    expect((await rejection(engine.registry.registerSource("wide", wide))).code).toBe("PAYLOAD_TOO_LARGE");
    expect(engine.registry.get("big")).toBeUndefined();
  });

  it("says where the module's name is when it does not match, and where a definition problem is", async () => {
    const { engine } = await open();
    const mismatch = await rejection(engine.registry.registerSource("other", workflowSource("mine", "return 1;")));
    expect(mismatch).toMatchObject({ code: "WORKFLOW_INVALID", details: { file: "other.ts", line: 3 } });
    expect(mismatch.message).toMatch(/named "mine" but was sent as "other"/);
    expect(mismatch.fix).toMatch(/"mine"/);

    const badCron = workflowSource("cron", "return 1;", `\n  description: "x",\n  schedule: { cron: "61 * * * *" },`);
    const invalid = await rejection(engine.registry.registerSource("cron", badCron));
    expect(invalid).toMatchObject({ code: "WORKFLOW_INVALID", details: { file: "cron.ts", line: 5 } });
    expect(invalid.details?.reason).toMatch(/schedule: invalid cron expression/);

    const syntax = await rejection(engine.registry.registerSource("syntax", 'import { workflow } from "bifrost";\nexport default workflow({\n  name: "syntax",\n  run() { return ; ; } )\n});\n'));
    expect(syntax).toMatchObject({ code: "WORKFLOW_COMPILE_ERROR", details: { file: "syntax.ts", line: 4 } });
    expect(typeof syntax.details?.reason).toBe("string");
  });

  it("lets the text import bifrost and packages only: no file of the engine's machine", async () => {
    const { engine, workflowsDir } = await open();
    const secretDir = tempDir("bifrost-secret-");
    writeFileSync(join(secretDir, "secret.json"), JSON.stringify({ token: "TOPSECRET-123" }));
    writeFileSync(join(secretDir, "secret.js"), "const x = TOPSECRET-456 (;\n");
    writeFileSync(join(workflowsDir, "helper.ts"), "export const h = 1;\n");
    const importing = (spec: string) => `import data from ${JSON.stringify(spec)};\nimport { workflow } from "bifrost";\nexport default workflow({ name: "thief", run() { return data; } });\n`;
    for (const spec of [join(secretDir, "secret.json"), join(secretDir, "secret.js"), "./helper", "../" + join("..", secretDir, "secret.json"), "pkg/../../secret.json", `file://${join(secretDir, "secret.json")}`]) {
      const err = await rejection(engine.registry.registerSource("thief", importing(spec)));
      expect({ spec, code: err.code }).toEqual({ spec, code: "WORKFLOW_COMPILE_ERROR" });
      expect(err.message).toMatch(/may import only "bifrost" and npm packages/);
      expect(JSON.stringify(err)).not.toMatch(/TOPSECRET/);
      expect(err.details).toMatchObject({ file: "thief.ts", line: 1 });
    }
    // require() is refused the same way.
    const required = `const data = require(${JSON.stringify(join(secretDir, "secret.json"))});\nimport { workflow } from "bifrost";\nexport default workflow({ name: "thief", run() { return data; } });\n`;
    expect((await rejection(engine.registry.registerSource("thief", required))).message).toMatch(/may import only/);
    expect(engine.registry.get("thief")).toBeUndefined();
  });

  it("keeps the version serving when new text is refused, without recording it as the workflow's problem", async () => {
    const { engine } = await open();
    const { workflow: v1, created } = await engine.registry.registerSource("keep", workflowSource("keep", "return 'v1';"));
    expect(created).toBe(true);
    const rejected = engine.events.next("workflow:rejected", (e) => e.name === "keep");
    await rejection(engine.registry.registerSource("keep", workflowSource("keep", "return 'v2' +;")));
    expect((await rejected).error.code).toBe("WORKFLOW_COMPILE_ERROR");
    expect(engine.registry.get("keep")?.version).toBe(v1.version);
    expect(engine.registry.problemFor(engine.registry.get("keep")!)).toBeUndefined();
    expect(engine.registry.problems()).toEqual([]);
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("keep");
    expect((await engine.waitForRun(run.id, 10_000)).result).toBe("v1");

    // The same text again changes nothing; new text replaces it.
    expect(await engine.registry.registerSource("keep", workflowSource("keep", "return 'v1';"))).toMatchObject({ created: false, changed: false, workflow: { version: v1.version } });
    const replaced = await engine.registry.registerSource("keep", workflowSource("keep", "return 'v3';"));
    expect(replaced).toMatchObject({ created: false, changed: true, workflow: { registeredAt: v1.registeredAt } });
  });

  it("gives a name to one module: a file's name cannot be taken by text, and text's not by a file", async () => {
    const { engine, workflowsDir } = await open({ workflows: { "owned.ts": workflowSource("owned", "return 'file';") } });
    const taken = await rejection(engine.registry.registerSource("owned", workflowSource("owned", "return 'api';")));
    expect(taken).toMatchObject({ code: "WORKFLOW_NAME_CONFLICT", details: { registeredBy: join(workflowsDir, "owned.ts") } });
    expect(taken.fix).toMatch(/edit .*owned\.ts/);
    expect(engine.registry.get("owned")?.sourceKind).toBe("file");

    const deleted = await rejection(engine.registry.unregisterSource("owned"));
    expect(deleted).toMatchObject({ code: "WORKFLOW_FILE_MANAGED", details: { file: join(workflowsDir, "owned.ts") } });
    expect(deleted.fix).toMatch(/Delete or rename .*owned\.ts/);
    expect(engine.registry.get("owned")).toBeDefined();
    expect((await rejection(engine.registry.unregisterSource("nothing"))).code).toBe("WORKFLOW_NOT_FOUND");

    // Once the file is gone its name is free, even before a reload.
    rmSync(join(workflowsDir, "owned.ts"));
    expect((await engine.registry.registerSource("owned", workflowSource("owned", "return 'api';"))).workflow.sourceKind).toBe("api");

    await engine.registry.registerSource("texty", workflowSource("texty", "return 'api';"));
    writeFileSync(join(workflowsDir, "texty.ts"), workflowSource("texty", "return 'file';"));
    await engine.registry.loadDirectory();
    const problem = engine.registry.problems().find((p) => p.file === join(workflowsDir, "texty.ts"));
    expect(problem?.error).toMatchObject({ code: "WORKFLOW_NAME_CONFLICT", fix: expect.stringMatching(/DELETE \/api\/workflows\/texty/) });
    expect(engine.registry.get("texty")?.sourceKind).toBe("api");
  });

  it("sees a name another engine process registered, when this one has not loaded it", async () => {
    const { engine, dataDir } = await open();
    const { engine: other } = await open({ dataDir, workflows: { "shared.ts": workflowSource("shared", "return 'file';") } });
    expect(other.registry.get("shared")?.sourceKind).toBe("file");
    expect(engine.registry.get("shared")).toBeUndefined();
    expect((await rejection(engine.registry.registerSource("shared", workflowSource("shared", "return 'api';")))).code).toBe("WORKFLOW_NAME_CONFLICT");
    expect((await rejection(engine.registry.unregisterSource("shared"))).code).toBe("WORKFLOW_FILE_MANAGED");
  });

  it("triggers the version another engine process registered since, and not one it removed", async () => {
    const { engine, dataDir, workflowsDir } = await open();
    await engine.registry.registerSource("moving", workflowSource("moving", "return 'v1';"));
    // `bifrost workflows deploy` on the same data directory, while this engine runs.
    const { engine: deployer } = await open({ dataDir, workflowsDir });
    const v2 = (await deployer.registry.registerSource("moving", workflowSource("moving", "return 'v2';"))).workflow.version;
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("moving");
    expect(run.workflowVersion).toBe(v2);
    expect((await engine.waitForRun(run.id, 10_000)).result).toBe("v2");
    expect((await engine.getWorkflow("moving")).version).toBe(v2);

    await deployer.registry.unregisterSource("moving");
    expect((await rejection(engine.triggerRun("moving"))).code).toBe("WORKFLOW_NOT_FOUND");
    expect(engine.registry.get("moving")).toBeUndefined();
  });

  it("does not unregister file workflows of another workflows directory whose files exist", async () => {
    const { dataDir } = await open({ workflows: { "theirs.ts": workflowSource("theirs", "return 1;") } });
    // An engine (a CLI command) on the same database with another workflows directory.
    const { engine: cli } = await open({ dataDir, workflows: { "mine.ts": workflowSource("mine", "return 2;") } });
    expect(cli.registry.list().map((w) => w.definition.name)).toEqual(["mine", "theirs"]);
    expect(await cli.storage.workflows.get("theirs")).toBeDefined();
  });

  it("registers modules one at a time: two texts sent at once for a new name give one creation", async () => {
    const { engine } = await open();
    const results = await Promise.all([
      engine.registry.registerSource("twice", workflowSource("twice", "return 'a';")),
      engine.registry.registerSource("twice", workflowSource("twice", "return 'b';")),
    ]);
    // Whichever compiled first created it; the other replaced it.
    expect(results.map((r) => r.created).sort()).toEqual([false, true]);
    expect(engine.registry.get("twice")?.version).toBe(results.find((r) => !r.created)!.workflow.version);
  });
});
