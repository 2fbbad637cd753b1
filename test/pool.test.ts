import { describe, expect, it } from "vitest";
import { compileModule } from "../engine/registry/compile.js";
import { IsolatePool, WorkflowSandbox } from "../sandbox/index.js";
import { tempDir, workflowSource, writeFiles } from "./helpers.js";

async function compile(name: string, body: string) {
  const dir = tempDir("bifrost-wf-");
  writeFiles(dir, { [`${name}.ts`]: workflowSource(name, body) });
  return compileModule({ kind: "file", file: `${dir}/${name}.ts` });
}

const limits = { memoryMb: 64, cpuMs: 1_000 };
const host = async () => ({ done: false });

async function runOnce(pool: IsolatePool, module: Awaited<ReturnType<typeof compile>>, params: unknown = {}) {
  const sandbox = await WorkflowSandbox.create(module, limits, pool);
  const deadline = Date.now() + 10_000;
  try {
    return await sandbox.run({ run: { id: "r" }, params, deadline }, { host, deadline });
  } finally {
    sandbox.dispose();
    // The isolate goes back after an asynchronous heap probe.
    await pool.settled();
  }
}

describe("isolate pool", () => {
  it("reuses an isolate with a fresh context: globals and built-in prototypes do not leak between runs", async () => {
    const pool = new IsolatePool({ memoryMb: 64, maxIdle: 1 });
    const polluter = await compile(
      "polluter",
      `globalThis.stolen = params.secret; Array.prototype.sneaky = () => params.secret; Object.prototype.evil = 1; JSON.parse = () => "hijacked"; return "done";`,
    );
    const probe = await compile("probe", `return { stolen: typeof globalThis.stolen, sneaky: typeof [].sneaky, evil: typeof ({}).evil, parse: JSON.parse("1") };`);
    expect(await runOnce(pool, polluter, { secret: "s3cr3t" })).toEqual({ kind: "returned", value: "done" });
    expect(pool.idleCount).toBe(1);
    expect(await runOnce(pool, probe)).toEqual({ kind: "returned", value: { stolen: "undefined", sneaky: "undefined", evil: "undefined", parse: 1 } });
    expect(pool.idleCount).toBe(1);
    pool.close();
  });

  it("never returns an isolate that hit a limit", async () => {
    const pool = new IsolatePool({ memoryMb: 64, maxIdle: 2 });
    const loop = await compile("loop", `for (;;) {}`);
    expect(await runOnce(pool, loop)).toEqual({ kind: "limit", limit: "cpu" });
    expect(pool.idleCount).toBe(0);
    const ok = await compile("ok", `return 1;`);
    expect(await runOnce(pool, ok)).toEqual({ kind: "returned", value: 1 });
    expect(pool.idleCount).toBe(1);
    pool.close();
  });

  it("replaces an isolate after its maximum number of runs", async () => {
    const pool = new IsolatePool({ memoryMb: 64, maxIdle: 1, maxUses: 2 });
    const ok = await compile("ok", `return 1;`);
    await runOnce(pool, ok);
    expect(pool.idleCount).toBe(1);
    await runOnce(pool, ok);
    expect(pool.idleCount).toBe(0);
    pool.close();
  });
});
