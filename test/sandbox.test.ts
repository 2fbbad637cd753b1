import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openTestEngine, workflowSource } from "./helpers.js";

const escapes = workflowSource(
  "escapes",
  `
    const attempt = async (fn) => { try { return { ok: true, value: await fn() }; } catch (e) { return { ok: false, error: String(e && e.message) }; } };
    const name = ["f", "s"].join("");
    return {
      process: typeof process,
      require: typeof require,
      fetch: typeof fetch,
      setTimeout: typeof setTimeout,
      WebAssembly: typeof WebAssembly,
      SharedArrayBuffer: typeof SharedArrayBuffer,
      Atomics: typeof Atomics,
      viaCtxFunction: await attempt(() => ctx.log.info.constructor("return typeof process")()),
      viaStepConstructor: await attempt(() => ctx.step.constructor("return typeof require")()),
      viaRunObject: await attempt(() => ctx.run.constructor.constructor("return typeof globalThis.process")()),
      globalKeys: await attempt(() => Function("return Object.getOwnPropertyNames(this).filter(k => /^__|process|require|host/i.test(k))")()),
      dynamicImport: await attempt(() => import(name)),
      evalImport: await attempt(() => eval("import('node:child_process')")),
    };
  `,
);

describe("sandbox isolation and limits", () => {
  let engine: Engine;

  beforeAll(async () => {
    ({ engine } = await openTestEngine({
      config: { concurrency: 6, sandboxCpuMs: 2000, sandboxMemoryMb: 32 },
      workflows: {
        "escapes.ts": escapes,
        "hello.ts": workflowSource("hello", `ctx.log.info("hi"); return { ok: true, n: params.n };`),
        "loop.ts": workflowSource("loop", `for (;;) {}`),
        "loop_after_await.ts": workflowSource("loop_after_await", `await ctx.step("first", () => 1); while (true) {}`),
        "hang.ts": workflowSource("hang", `await new Promise(() => {});`, `\n  timeout: "300ms",`),
        "memory.ts": workflowSource("memory", `const hog = []; for (;;) hog.push(new Array(100000).fill("x".repeat(10)));`),
        "touch_process.ts": workflowSource("touch_process", `process.exit(1);`),
        "touch_require.ts": workflowSource("touch_require", `const moduleName = ["f", "s"].join(""); return require(moduleName).readFileSync("/etc/passwd", "utf8");`),
      },
    }));
    engine.start();
  });

  afterAll(async () => {
    await engine.stop(0);
  });

  async function runToEnd(name: string, params: unknown = {}) {
    const { run } = await engine.triggerRun(name, { params });
    return engine.waitForRun(run.id, 30_000);
  }

  it("exposes no host capability to workflow code", async () => {
    const run = await runToEnd("escapes");
    expect(run.status).toBe("succeeded");
    const r = run.result as Record<string, { ok: boolean; value?: unknown; error?: string } | string>;
    for (const key of ["process", "require", "fetch", "setTimeout", "WebAssembly", "SharedArrayBuffer", "Atomics"]) {
      expect(r[key], key).toBe("undefined");
    }
    expect(r.viaCtxFunction).toEqual({ ok: true, value: "undefined" });
    expect(r.viaStepConstructor).toEqual({ ok: true, value: "undefined" });
    expect(r.viaRunObject).toEqual({ ok: true, value: "undefined" });
    expect(r.globalKeys).toEqual({ ok: true, value: [] });
    expect(r.dynamicImport).toMatchObject({ ok: false });
    expect(r.evalImport).toMatchObject({ ok: false });
  });

  it("fails runs that reach for process or require with the ReferenceError and its line", async () => {
    const [proc, req] = await Promise.all([runToEnd("touch_process"), runToEnd("touch_require")]);
    expect(proc.status).toBe("failed");
    expect(proc.error).toMatchObject({ code: "WORKFLOW_ERROR", message: "process is not defined" });
    expect(proc.error?.stack).toMatch(/touch_process\.ts:5:\d+/);
    expect(req.status).toBe("failed");
    expect(req.error?.message).toBe("require is not defined");
  });

  it("stops runaway, hanging and memory-hungry runs while a well-behaved run succeeds beside them", async () => {
    const [loop, loopAfterAwait, hang, memory, hello] = await Promise.all([
      runToEnd("loop"),
      runToEnd("loop_after_await"),
      runToEnd("hang"),
      runToEnd("memory"),
      runToEnd("hello", { n: 7 }),
    ]);
    expect(hello).toMatchObject({ status: "succeeded", result: { ok: true, n: 7 } });
    expect(loop).toMatchObject({ status: "timed_out", error: { code: "SANDBOX_CPU_LIMIT" } });
    expect(loopAfterAwait).toMatchObject({ status: "timed_out", error: { code: "SANDBOX_CPU_LIMIT" } });
    expect(hang).toMatchObject({ status: "timed_out", error: { code: "RUN_TIMED_OUT" } });
    expect(memory).toMatchObject({ status: "failed", error: { code: "SANDBOX_MEMORY_LIMIT" } });
    expect(memory.error?.message).toMatch(/memory limit of 32 MB/);

    // The engine keeps serving: another run after all of that still works.
    expect(await runToEnd("hello", { n: 8 })).toMatchObject({ status: "succeeded", result: { n: 8 } });
  });
});
