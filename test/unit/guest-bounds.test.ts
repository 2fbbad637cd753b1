import { describe, expect, it } from "vitest";
import { capStack, GUEST_BOUNDS, readGuestError, stepNameProblem } from "../../sandbox/bounds.js";
import { cpuBudgetSpent } from "../../sandbox/cpu.js";
import { parseHostArgs, readEnvelope } from "../../sandbox/envelope.js";
import { firstUserFrame, mapStack, parseFrameLocation } from "../../sandbox/stack.js";

// A stack of this shape made the old frame regex backtrack quadratically (24,000 repeats took 14 s
// of CPU); at 200,000 it would run for many minutes. Parsing is now one scan.
const HOSTILE_STACK = "Error: boom\n" + ":1".repeat(200_000) + "(";

describe("guest stacks", () => {
  it("parses frame locations with one backward scan, whatever the line", () => {
    expect(parseFrameLocation("    at run (workflows/a.ts:3:5)")).toEqual({ file: "workflows/a.ts", line: 3, column: 5 });
    expect(parseFrameLocation("    at workflows/a.ts:12:1  ")).toEqual({ file: "workflows/a.ts", line: 12, column: 1 });
    expect(parseFrameLocation("    at file:///x/y.ts:7:9")).toEqual({ file: "file:///x/y.ts", line: 7, column: 9 });
    expect(parseFrameLocation("    at new ArrayBuffer (<anonymous>)")).toBeUndefined();
    expect(parseFrameLocation("    at x (:1:2)")).toBeUndefined();
    // Not capped: linear on its own.
    expect(parseFrameLocation(":1".repeat(200_000) + "(")).toBeUndefined();
    expect(parseFrameLocation("(" + "a".repeat(200_000) + ":1:2")).toEqual({ file: "a".repeat(200_000), line: 1, column: 2 });
  });

  it("finds no user frame in a hostile stack and maps it to a bounded one", () => {
    expect(firstUserFrame(HOSTILE_STACK)).toBeUndefined();
    const mapped = mapStack(HOSTILE_STACK, "{}");
    expect(mapped.length).toBeLessThanOrEqual(GUEST_BOUNDS.stackChars);
    expect(mapped.startsWith("Error: boom\n:1:1:1")).toBe(true);
  });

  it("maps bundle positions through many references on one line without a regex", () => {
    // Column 10 of the bundle's line 1 maps to src.ts line 3 column 5 (VLQ "SAEI").
    const map = JSON.stringify({ version: 3, sources: ["workflows/src.ts"], names: [], mappings: "SAEI" });
    const line = "    at run (bifrost-bundle.js:1:10) via bifrost-bundle.js: and bifrost-bundle.js:1:10";
    expect(mapStack(`Error: x\n${line}`, map)).toBe("Error: x\n    at run (workflows/src.ts:3:5) via bifrost-bundle.js: and workflows/src.ts:3:5");
  });

  it("caps a stack to its first frames and a bounded length", () => {
    const deep = ["Error: deep", ...Array.from({ length: 500 }, (_, i) => `    at f${i} (workflows/a.ts:${i + 1}:1)`)].join("\n");
    const capped = capStack(deep);
    expect(capped.split("\n")).toHaveLength(GUEST_BOUNDS.stackFrames + 2);
    expect(capped.endsWith("… more frames cut")).toBe(true);
    expect(capStack("E".repeat(1_000_000)).length).toBe(GUEST_BOUNDS.stackChars);
  });
});

describe("guest error data", () => {
  it("bounds every field and keeps the workflow's own code as data", () => {
    const e = readGuestError({ name: "N".repeat(10_000), message: "m".repeat(20 * 1024 * 1024), stack: "s".repeat(100_000), code: "SANDBOX_MEMORY_LIMIT", fault: "not-a-fault-id" });
    expect(e.name.length).toBe(GUEST_BOUNDS.nameChars);
    expect(e.message.length).toBe(GUEST_BOUNDS.errorMessageChars);
    expect(e.message.endsWith("… [truncated]")).toBe(true);
    expect(e.stack?.length).toBe(GUEST_BOUNDS.stackChars);
    expect(e.code).toBe("SANDBOX_MEMORY_LIMIT");
    expect(e.fault).toBeUndefined();
  });

  it("reads anything at all without throwing", () => {
    for (const raw of [null, 42, "text", [1, 2], { name: 5, message: { a: 1 }, stack: [], code: {} }]) {
      expect(readGuestError(raw)).toEqual({ name: "Error", message: "" });
    }
    const id = "0b7e6a52-9c8d-4f3e-8a1b-2c3d4e5f6a7b";
    expect(readGuestError({ name: "BifrostError", message: "x", fault: id }).fault).toBe(id);
  });
});

describe("step names", () => {
  it("accepts short printable names and refuses empty, long or control-character names", () => {
    expect(stepNameProblem("fetch tickets #3 — ünïcode")).toBeUndefined();
    expect(stepNameProblem("x".repeat(200))).toBeUndefined();
    expect(stepNameProblem("")).toMatch(/non-empty/);
    expect(stepNameProblem(7)).toMatch(/non-empty string/);
    expect(stepNameProblem("x".repeat(201))).toMatch(/at most 200/);
    expect(stepNameProblem("a\nb")).toMatch(/control characters/);
    expect(stepNameProblem("a\u0085b")).toMatch(/control characters/);
  });
});

describe("CPU budget", () => {
  it("is spent only when the isolate's clock and the process's real CPU time both pass it", () => {
    // isolated-vm's clock runs ahead of real CPU while the isolate waits for a core.
    expect(cpuBudgetSpent(3_000_000_000n, 400_000, 2000)).toBe(false);
    expect(cpuBudgetSpent(1_000_000_000n, 5_000_000, 2000)).toBe(false);
    expect(cpuBudgetSpent(2_000_000_001n, 2_000_001, 2000)).toBe(true);
  });
});

describe("the bridge", () => {
  const deep = (n: number) => "[".repeat(n) + "]".repeat(n);

  it("refuses host-call arguments that are too long or too deep before parsing them", () => {
    expect(parseHostArgs("log", '{"level":"info","msg":"hi"}')).toEqual({ level: "info", msg: "hi" });
    expect(() => parseHostArgs("step.end", `{"result":"${"x".repeat(GUEST_BOUNDS.bridgeChars)}"}`)).toThrow(
      expect.objectContaining({ code: "RESULT_TOO_LARGE", message: expect.stringMatching(/^a step result is \d+ characters of JSON/) }),
    );
    expect(() => parseHostArgs("step.end", `{"result":${deep(10_000)}}`)).toThrow(expect.objectContaining({ code: "RESULT_NOT_SERIALIZABLE", message: "a step result is nested deeper than 64 levels" }));
    expect(() => parseHostArgs("log", 42)).toThrow(expect.objectContaining({ code: "VALIDATION_FAILED" }));
    // A value 64 levels deep is allowed; it sits at depth 65 of the arguments.
    expect(parseHostArgs("step.end", `{"result":${deep(64)}}`)).toBeTruthy();
  });

  it("reads the invocation envelope within bounds, whatever the guest handed back", () => {
    expect(readEnvelope('{"ok":true,"value":[1]}')).toEqual({ kind: "returned", value: [1] });
    expect(readEnvelope(`{"ok":true,"value":${deep(10_000)}}`)).toEqual({ kind: "refused", code: "RESULT_NOT_SERIALIZABLE", message: "the value the run returned is nested deeper than 64 levels" });
    expect(readEnvelope(`{"ok":true,"value":"${"x".repeat(GUEST_BOUNDS.bridgeChars)}"}`)).toMatchObject({ kind: "refused", code: "RESULT_TOO_LARGE" });
    const threw = readEnvelope(JSON.stringify({ ok: false, error: { name: "Error", message: "E".repeat(100_000), code: "RUN_CANCELLED" } }));
    expect(threw).toMatchObject({ kind: "threw", error: { name: "Error", code: "RUN_CANCELLED" } });
    expect(threw.kind === "threw" && threw.error.message.length).toBe(GUEST_BOUNDS.errorMessageChars);
    for (const raw of [{ ok: true }, "not json", '{"ok":"yes"}', "[1]"]) expect(readEnvelope(raw)).toMatchObject({ kind: "threw", error: { message: expect.stringMatching(/unreadable result/) } });
  });
});
