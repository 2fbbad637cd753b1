import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { BifrostError } from "../common/errors.js";
import { openTestEngine, workflowSource, writeFiles } from "./helpers.js";

const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop(0);
});

async function open(workflows: Record<string, string>, extra: Parameters<typeof openTestEngine>[0] = {}) {
  const t = await openTestEngine({ workflows, ...extra });
  engines.push(t.engine);
  return t;
}

function problemFor(engine: Engine, file: string) {
  return engine.registry.problems().find((p) => p.file?.endsWith(file));
}

describe("workflow registration", () => {
  it("registers TypeScript modules and reports a syntax error with file and line without stopping the others", async () => {
    const { engine } = await open({
      "good.ts": `import { workflow } from "bifrost";
interface P { n: number }
export default workflow({ name: "good", async run(ctx, params: P) { return { doubled: (params.n ?? 1) * 2 }; } });
`,
      "broken.ts": `import { workflow } from "bifrost";
export default workflow({
  name: "broken",
  async run(ctx) {
    return { oops: };
  },
});
`,
    });
    expect(engine.registry.list().map((w) => w.definition.name)).toEqual(["good"]);
    const problem = problemFor(engine, "broken.ts");
    expect(problem?.error.code).toBe("WORKFLOW_COMPILE_ERROR");
    expect(problem?.error.message).toMatch(/broken\.ts:5:\d+: Unexpected "}"/);
    expect(problem?.error.details).toMatchObject({ line: 5, reason: 'Unexpected "}"' });
  });

  it("rejects Node built-ins at registration with a message that says why", async () => {
    const { engine } = await open({ "uses_fs.ts": `import { readFileSync } from "node:fs";\nimport { workflow } from "bifrost";\nexport default workflow({ name: "uses_fs", run() { return readFileSync("/etc/passwd", "utf8"); } });\n` });
    const problem = problemFor(engine, "uses_fs.ts");
    expect(problem?.error).toMatchObject({ code: "WORKFLOW_COMPILE_ERROR", details: { line: 1 } });
    expect(problem?.error.message).toMatch(/Node built-in "node:fs" is not available in the Bifrost sandbox/);
  });

  it("validates the definition and lists every problem", async () => {
    const { engine } = await open({
      "bad_def.ts": `import { workflow } from "bifrost";
export default workflow({
  name: "Bad Name",
  scheduel: "oops",
  schedule: { cron: "61 * * * *", timezone: "Mars/Olympus" },
  timeout: "soon",
  params: { type: "object", properties: { n: { type: "nonsense" } } },
  retry: { attempts: 0 },
  run() {},
} as any);
`,
    });
    const problem = problemFor(engine, "bad_def.ts");
    expect(problem?.error.code).toBe("WORKFLOW_INVALID");
    const problems = (problem?.error.details as { problems: string[] }).problems;
    expect(problems.join("\n")).toMatch(/unknown field "scheduel"/);
    expect(problems.join("\n")).toMatch(/name: "Bad Name" must match/);
    expect(problems.join("\n")).toMatch(/unknown time zone "Mars\/Olympus"/);
    expect(problems.join("\n")).toMatch(/timeout: "soon" is not a duration/);
    expect(problems.join("\n")).toMatch(/params: not a valid JSON Schema/);
    expect(problems.join("\n")).toMatch(/retry.attempts/);
  });

  it("rejects a bad cron expression with the reason", async () => {
    const { engine } = await open({ "bad_cron.ts": workflowSource("bad_cron", "return 1;", `\n  schedule: { cron: "61 * * * *" },`) });
    expect(problemFor(engine, "bad_cron.ts")?.error.message).toMatch(/schedule: invalid cron expression "61 \* \* \* \*"/);
  });

  it("reports a module whose top level throws at the user's line", async () => {
    const { engine } = await open({ "throws.ts": `import { workflow } from "bifrost";\nconst config = JSON.parse("{not json");\nexport default workflow({ name: "throws", run() { return config; } });\n` });
    const problem = problemFor(engine, "throws.ts");
    expect(problem?.error.code).toBe("WORKFLOW_INVALID");
    expect(problem?.error.message).toMatch(/throws\.ts:2:\d+: .*JSON/);
  });

  it("keeps the last good version when a file breaks, and takes the fix", async () => {
    const { engine, workflowsDir } = await open({ "flip.ts": workflowSource("flip", "return 'v1';") });
    const v1 = engine.registry.get("flip")!.version;
    writeFileSync(join(workflowsDir, "flip.ts"), workflowSource("flip", "return 'v2' +;"));
    await engine.registry.loadDirectory();
    expect(engine.registry.get("flip")?.version).toBe(v1);
    expect(engine.registry.problemFor(engine.registry.get("flip")!)?.error.code).toBe("WORKFLOW_COMPILE_ERROR");

    engine.start({ watch: false });
    const { run } = await engine.triggerRun("flip");
    expect((await engine.waitForRun(run.id, 10_000)).result).toBe("v1");

    writeFileSync(join(workflowsDir, "flip.ts"), workflowSource("flip", "return 'v3';"));
    await engine.registry.loadDirectory();
    expect(engine.registry.get("flip")?.version).not.toBe(v1);
    expect(engine.registry.problemFor(engine.registry.get("flip")!)).toBeUndefined();
    const again = await engine.triggerRun("flip");
    expect((await engine.waitForRun(again.run.id, 10_000)).result).toBe("v3");
  });

  it("bundles pure npm packages imported by a module", async () => {
    const { engine, workflowsDir } = await open({});
    writeFiles(workflowsDir, {
      "node_modules/tiny-slug/package.json": JSON.stringify({ name: "tiny-slug", version: "1.0.0", main: "index.js" }),
      "node_modules/tiny-slug/index.js": `module.exports = function slug(s) { return String(s).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, ""); };`,
      "node_modules/esm-pad/package.json": JSON.stringify({ name: "esm-pad", version: "1.0.0", type: "module", exports: "./index.js" }),
      "node_modules/esm-pad/index.js": `export const pad = (s, n) => String(s).padStart(n, "0");`,
      "slugger.ts": `import slug from "tiny-slug";\nimport { pad } from "esm-pad";\nimport { workflow } from "bifrost";\nexport default workflow({ name: "slugger", run(ctx, p: { title: string }) { return slug(p.title) + "-" + pad(7, 3); } });\n`,
    });
    await engine.registry.loadDirectory();
    engine.start({ watch: false });
    const { run } = await engine.triggerRun("slugger", { params: { title: "Contoso Ltd: Q3 Report!" } });
    expect((await engine.waitForRun(run.id, 10_000)).result).toBe("contoso-ltd-q3-report-007");
  });

  it("refuses a second module with the same name, and unregisters a deleted file", async () => {
    const { engine, workflowsDir } = await open({ "a.ts": workflowSource("same", "return 'a';"), "b.ts": workflowSource("same", "return 'b';") });
    expect(engine.registry.get("same")?.file).toMatch(/a\.ts$/);
    expect(problemFor(engine, "b.ts")?.error.code).toBe("WORKFLOW_NAME_CONFLICT");
    rmSync(join(workflowsDir, "a.ts"));
    rmSync(join(workflowsDir, "b.ts"));
    await engine.registry.loadDirectory();
    expect(engine.registry.get("same")).toBeUndefined();
    expect(await engine.storage.workflows.get("same")).toBeUndefined();
  });

  it("registers from source text, checks the name, and persists across restarts", async () => {
    const { engine, dataDir, workflowsDir } = await open({});
    await expect(engine.registry.registerSource("other", workflowSource("mine", "return 1;"))).rejects.toMatchObject({ code: "WORKFLOW_INVALID" });
    await expect(engine.registry.registerSource("syntax", "export default {")).rejects.toBeInstanceOf(BifrostError);
    const { workflow: registered } = await engine.registry.registerSource("from_api", workflowSource("from_api", "return params.x + 1;"));
    expect(registered.sourceKind).toBe("api");
    await engine.stop(0);
    engines.pop();

    const { engine: reopened } = await open({}, { dataDir, workflowsDir });
    expect(reopened.registry.get("from_api")?.version).toBe(registered.version);
    reopened.start({ watch: false });
    const { run } = await reopened.triggerRun("from_api", { params: { x: 41 } });
    expect((await reopened.waitForRun(run.id, 10_000)).result).toBe(42);
  });

  it("reloads a changed file while running with watch on", async () => {
    const { engine, workflowsDir } = await open({ "watched.ts": workflowSource("watched", "return 1;") });
    engine.start({ watch: true });
    const registered = engine.events.next("workflow:registered", (e) => e.name === "watched");
    writeFileSync(join(workflowsDir, "watched.ts"), workflowSource("watched", "return 2;"));
    expect((await registered).version).toBe(engine.registry.get("watched")?.version);
    const { run } = await engine.triggerRun("watched");
    expect((await engine.waitForRun(run.id, 10_000)).result).toBe(2);
  });

  it("with watch on, takes saves that replace the file, and a module restored to its last good text clears its problem", async () => {
    const { engine, workflowsDir } = await open({ "flip.ts": workflowSource("flip", "return 'v1';") });
    const file = join(workflowsDir, "flip.ts");
    const v1 = engine.registry.get("flip")!.version;
    // Editors and `git checkout` save by writing another file and renaming it over the module.
    const replace = (text: string) => {
      writeFileSync(`${file}.tmp~`, text);
      renameSync(`${file}.tmp~`, file);
    };
    const edits: [string, (text: string) => void][] = [
      ["replaced", replace],
      ["written in place", (text) => writeFileSync(file, text)],
      ["replaced again", replace],
    ];
    engine.start({ watch: true });
    for (const [how, save] of edits) {
      const rejected = engine.events.next("workflow:rejected", (e) => e.file === file);
      save(workflowSource("flip", "return 'v2' +;"));
      await rejected;
      expect({ how, code: engine.registry.problemFor(engine.registry.get("flip")!)?.error.code }).toEqual({ how, code: "WORKFLOW_COMPILE_ERROR" });

      const accepted = engine.events.next("workflow:registered", (e) => e.name === "flip");
      save(workflowSource("flip", "return 'v1';"));
      expect((await accepted).version).toBe(v1);
      expect({ how, problem: engine.registry.problemFor(engine.registry.get("flip")!) }).toEqual({ how, problem: undefined });
      expect(engine.registry.problems()).toEqual([]);
    }
  });

  it("names the real file of a compile error inside a helper or a bundled npm package", async () => {
    const { engine, workflowsDir } = await open({
      "node_modules/bad-dep/package.json": JSON.stringify({ name: "bad-dep", version: "1.0.0", main: "lib/index.js" }),
      "node_modules/bad-dep/lib/index.js": "module.exports = function ( { ;\n",
      "lib/helper.ts": "export const x = ;\n",
      "uses_dep.ts": `import dep from "bad-dep";\nimport { workflow } from "bifrost";\nexport default workflow({ name: "uses_dep", run() { return dep(); } });\n`,
      "uses_helper.ts": `import { x } from "./lib/helper";\nimport { workflow } from "bifrost";\nexport default workflow({ name: "uses_helper", run() { return x; } });\n`,
    });
    const cases: [string, string][] = [
      ["uses_dep.ts", join(workflowsDir, "node_modules/bad-dep/lib/index.js")],
      ["uses_helper.ts", join(workflowsDir, "lib/helper.ts")],
    ];
    for (const [module, real] of cases) {
      const error = problemFor(engine, module)?.error;
      const details = error?.details as { file: string; line: number };
      expect(error?.code).toBe("WORKFLOW_COMPILE_ERROR");
      // Shown relative to the current directory when inside it, else absolute: either way it exists.
      expect({ module, file: resolve(details.file), line: details.line }).toEqual({ module, file: real, line: 1 });
      expect(existsSync(details.file)).toBe(true);
      expect(error?.message.startsWith(`${details.file}:1:`)).toBe(true);
    }
  });

  it("gives a name to the module that asks for it once the file holding it is deleted or renames it", async () => {
    const { engine, workflowsDir } = await open({ "b.ts": workflowSource("same", "return 'b';") });
    // a.ts sorts first but arrives second: the name is b.ts's.
    writeFiles(workflowsDir, { "a.ts": workflowSource("same", "return 'a';") });
    await engine.registry.loadDirectory();
    expect(problemFor(engine, "a.ts")?.error.code).toBe("WORKFLOW_NAME_CONFLICT");

    // b.ts takes another name in the same reload in which a.ts is tried first.
    writeFileSync(join(workflowsDir, "b.ts"), workflowSource("other", "return 'b';"));
    await engine.registry.loadDirectory();
    expect(engine.registry.get("same")?.file).toBe(join(workflowsDir, "a.ts"));
    expect(engine.registry.get("other")?.file).toBe(join(workflowsDir, "b.ts"));
    expect(engine.registry.problems()).toEqual([]);

    // c.ts wants "other" while b.ts holds it; deleting b.ts hands the name over in one reload.
    writeFiles(workflowsDir, { "c.ts": workflowSource("other", "return 'c';") });
    await engine.registry.loadDirectory();
    expect(problemFor(engine, "c.ts")?.error.code).toBe("WORKFLOW_NAME_CONFLICT");
    rmSync(join(workflowsDir, "b.ts"));
    await engine.registry.loadDirectory();
    expect(engine.registry.get("other")?.file).toBe(join(workflowsDir, "c.ts"));
    expect(engine.registry.problems()).toEqual([]);
  });
});
