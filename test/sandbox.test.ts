import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../engine/engine.js";
import { openTestEngine, workflowSource } from "./helpers.js";

const escapes = workflowSource(
  "escapes",
  `
    const attempt = async (fn) => { try { return { ok: true, value: await fn() }; } catch (e) { return { ok: false, error: String(e && e.message) }; } };
    const name = ["f", "s"].join("");
    return {
      WebAssembly: typeof WebAssembly,
      SharedArrayBuffer: typeof SharedArrayBuffer,
      Atomics: typeof Atomics,
      // process is the sandbox's own stand-in: nothing of Node's is reachable through it.
      processKeys: Object.getOwnPropertyNames(process).sort(),
      processProto: Object.getPrototypeOf(process) === Object.prototype,
      processVersions: typeof process.versions + "/" + typeof process.binding + "/" + typeof process.mainModule,
      requireSource: String(require).includes("not available"),
      viaCtxFunction: await attempt(() => ctx.log.info.constructor("return typeof process.binding")()),
      viaStepConstructor: await attempt(() => ctx.step.constructor("return typeof require.cache")()),
      viaRunObject: await attempt(() => ctx.run.constructor.constructor("return typeof globalThis.process.dlopen")()),
      viaExitConstructor: await attempt(() => process.exit.constructor("return typeof globalThis.process.kill")()),
      globalKeys: await attempt(() => Function("return Object.getOwnPropertyNames(this).filter(k => /^__|process|require|host/i.test(k)).sort()")()),
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
        "touch_process.ts": workflowSource("touch_process", `process.exit(1);`),
        "touch_env.ts": workflowSource("touch_env", `return process.env.API_KEY;`),
        "node_env.ts": workflowSource("node_env", `return process.env.NODE_ENV;`),
        "touch_require.ts": workflowSource("touch_require", `const moduleName = ["f", "s"].join(""); return require(moduleName).readFileSync("/etc/passwd", "utf8");`),
        "touch_fetch.ts": workflowSource("touch_fetch", `return await fetch("https://example.com");`),
        "touch_timer.ts": workflowSource("touch_timer", `await new Promise((resolve) => setTimeout(resolve, 10));`),
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
    for (const key of ["WebAssembly", "SharedArrayBuffer", "Atomics"]) expect(r[key], key).toBe("undefined");
    expect(r.processKeys).toEqual(["env", "exit"]);
    expect(r.processProto).toBe(true);
    expect(r.processVersions).toBe("undefined/undefined/undefined");
    expect(r.requireSource).toBe(true);
    expect(r.viaCtxFunction).toEqual({ ok: true, value: "undefined" });
    expect(r.viaStepConstructor).toEqual({ ok: true, value: "undefined" });
    expect(r.viaRunObject).toEqual({ ok: true, value: "undefined" });
    expect(r.viaExitConstructor).toEqual({ ok: true, value: "undefined" });
    // The stand-ins are the only such globals; no host object sits behind a name.
    expect(r.globalKeys).toEqual({ ok: true, value: ["process", "require"] });
    expect(r.dynamicImport).toMatchObject({ ok: false });
    expect(r.evalImport).toMatchObject({ ok: false });
  });

  it("tells a workflow that reaches for fetch, setTimeout, require or process which ctx member to use instead", async () => {
    const [proc, env, nodeEnv, req, fetched, timer] = await Promise.all([
      runToEnd("touch_process"),
      runToEnd("touch_env"),
      runToEnd("node_env"),
      runToEnd("touch_require"),
      runToEnd("touch_fetch"),
      runToEnd("touch_timer"),
    ]);
    expect(proc.error).toMatchObject({ code: "WORKFLOW_ERROR", message: expect.stringMatching(/^process\.exit\(\) is not available in a Bifrost workflow: return from run\(\)/) });
    expect(proc.error?.stack).toMatch(/touch_process\.ts:5:\d+/);
    expect(env.error?.message).toMatch(/^process\.env is not available in a Bifrost workflow: use ctx\.config\.get\(key\) and ctx\.secrets\.get\(key\) \(coming in a later release\)/);
    // Bundled npm packages branch on NODE_ENV; that one still reads.
    expect(nodeEnv).toMatchObject({ status: "succeeded", result: "production" });
    expect(req.error?.message).toMatch(/^require\(\) is not available in a Bifrost workflow: import npm packages with `import` instead \(they are bundled/);
    expect(fetched.error?.message).toBe("fetch() is not available in a Bifrost workflow: use ctx.http.get(url, options) or ctx.http.request(method, url, options): requests run on the host, with retries and rate limits handled");
    expect(timer.error?.message).toMatch(/^setTimeout\(\) is not available in a Bifrost workflow: use await ctx\.sleep\(duration\) or await ctx\.sleepUntil\(date\)/);
    for (const run of [proc, env, req, fetched, timer]) expect(run).toMatchObject({ status: "failed", error: { code: "WORKFLOW_ERROR", details: { name: "TypeError" } } });
  });

  it("stops runaway and hanging runs while a well-behaved run succeeds beside them", async () => {
    const [loop, loopAfterAwait, hang, hello] = await Promise.all([runToEnd("loop"), runToEnd("loop_after_await"), runToEnd("hang"), runToEnd("hello", { n: 7 })]);
    expect(hello).toMatchObject({ status: "succeeded", result: { ok: true, n: 7 } });
    expect(loop).toMatchObject({ status: "timed_out", error: { code: "SANDBOX_CPU_LIMIT" } });
    expect(loopAfterAwait).toMatchObject({ status: "timed_out", error: { code: "SANDBOX_CPU_LIMIT" } });
    expect(hang).toMatchObject({ status: "timed_out", error: { code: "RUN_TIMED_OUT" } });

    // The engine keeps serving: another run after all of that still works.
    expect(await runToEnd("hello", { n: 8 })).toMatchObject({ status: "succeeded", result: { n: 8 } });
  });
});

/**
 * A run that allocates without end is a memory problem, whichever limit it would reach first on a
 * slow machine: it ends as SANDBOX_MEMORY_LIMIT, decided from the isolate (disposed by isolated-vm,
 * or its heap full when a buffer was refused), never from a message the workflow could write. Each
 * runs alone, so the CPU budget (which counts this process's real CPU time) cannot end it first
 * however loaded the machine is.
 */
describe("memory limit", () => {
  let engine: Engine;

  beforeAll(async () => {
    ({ engine } = await openTestEngine({
      config: { sandboxCpuMs: 2000, sandboxMemoryMb: 32 },
      workflows: {
        "memory.ts": workflowSource("memory", `const hog = []; for (;;) hog.push(new Array(100000).fill("x".repeat(10)));`),
        "memory_after_await.ts": workflowSource("memory_after_await", `await ctx.step("first", () => 1); const hog = []; for (;;) hog.push({ a: Math.random(), b: [1, 2, 3] });`),
        "buffers.ts": workflowSource("buffers", `const hog = []; for (;;) hog.push(new ArrayBuffer(1024 * 1024));`),
        "fake_buffer_error.ts": workflowSource("fake_buffer_error", `throw new RangeError("Array buffer allocation failed");`),
        "hello.ts": workflowSource("hello", `return "still here";`),
      },
    }));
    engine.start();
  });

  afterAll(async () => {
    await engine.stop(0);
  });

  async function runToEnd(name: string) {
    const { run } = await engine.triggerRun(name);
    return engine.waitForRun(run.id, 30_000);
  }

  it.each(["memory", "memory_after_await", "buffers"])("ends %s as SANDBOX_MEMORY_LIMIT", async (name) => {
    const run = await runToEnd(name);
    expect(run).toMatchObject({ status: "failed", error: { code: "SANDBOX_MEMORY_LIMIT" } });
    expect(run.error?.message).toMatch(/memory limit of 32 MB/);
    expect(await runToEnd("hello")).toMatchObject({ status: "succeeded", result: "still here" });
  });

  it("does not take a workflow's own allocation-failure message for the memory limit", async () => {
    const run = await runToEnd("fake_buffer_error");
    expect(run.error).toMatchObject({ code: "WORKFLOW_ERROR", message: "Array buffer allocation failed", details: { name: "RangeError" } });
  });
});
