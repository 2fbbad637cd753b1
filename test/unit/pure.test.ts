import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor, parseTime } from "../../engine/api/cursor.js";
import { formatDuration, parseDuration } from "../../engine/duration.js";
import { ERROR_CODES } from "../../common/errors.js";
import { uuidv7, UUID_PATTERN } from "../../engine/ids.js";
import { validateDefinition } from "../../engine/registry/definition.js";
import { retryDelayMs } from "../../engine/runner/backoff.js";
import { cronError, nextFireTime } from "../../engine/scheduler/index.js";
import { firstUserFrame, mapStack } from "../../sandbox/stack.js";

describe("durations", () => {
  it("parses units, compounds and milliseconds", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("1.5h")).toBe(5_400_000);
    expect(parseDuration(" 1D ")).toBe(86_400_000);
    expect(parseDuration(250)).toBe(250);
  });
  it("rejects anything else", () => {
    for (const bad of ["", "soon", "5", "5x", "-1s", "1h 30m", 0, -5, Number.NaN, null, {}]) expect(parseDuration(bad), String(bad)).toBeUndefined();
  });
  it("formats for people", () => {
    expect([999, 1_000, 1_500, 90_000, 3_600_000, 5_400_000].map(formatDuration)).toEqual(["999ms", "1s", "1.5s", "1m30s", "1h", "1h30m"]);
  });
});

describe("workflow definitions", () => {
  // The sandbox hands over the definition as plain data: run() and other functions are left out.
  it("fills defaults", () => {
    const result = validateDefinition({ name: "a" });
    expect(result).toEqual({
      ok: true,
      definition: {
        name: "a",
        description: null,
        params: { type: "object" },
        schedule: null,
        timeoutMs: 3_600_000,
        chunkTimeoutMs: 300_000,
        retry: { attempts: 1, backoff: "exponential", delayMs: 10_000, maxDelayMs: 3_600_000 },
        webhook: false,
      },
    });
  });
  it("normalizes schedules and clamps chunkTimeout to the run timeout", () => {
    const result = validateDefinition({ name: "b", schedule: { cron: "0 9 * * 1", timezone: "America/New_York", overlap: "queue" }, timeout: "1m", chunkTimeout: "5m" });
    expect(result.ok && result.definition.schedule).toEqual({ cron: "0 9 * * 1", timezone: "America/New_York", overlap: "queue", catchUp: "latest", catchUpWindowMs: 86_400_000 });
    expect(result.ok && result.definition.chunkTimeoutMs).toBe(60_000);
  });
  it("reports each problem", () => {
    const result = validateDefinition({ name: "9lives", schedule: { cron: "* * *", overlap: "maybe" }, retry: { attempts: 2.5, backoff: "random" }, extra: 1 });
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    expect(problems).toHaveLength(6);
    expect(problems.join("\n")).toMatch(/unknown field "extra"/);
    expect(problems.join("\n")).toMatch(/must have 5 fields/);
    expect(problems.join("\n")).toMatch(/schedule.overlap/);
    expect(problems.join("\n")).toMatch(/retry.backoff/);
  });
});

describe("cron", () => {
  it("validates expressions and zones", () => {
    expect(cronError("0 9 * * 1", "UTC")).toBeUndefined();
    expect(cronError("0 9 * * 1", "Nowhere/City")).toMatch(/unknown time zone/);
    expect(cronError("99 * * * *", "UTC")).toMatch(/invalid cron expression/);
  });
  it("computes the next fire in the schedule's zone", () => {
    // 2026-03-02 is a Monday; 09:00 in New York (EST) is 14:00 UTC.
    expect(new Date(nextFireTime("0 9 * * 1", "America/New_York", Date.parse("2026-02-28T00:00:00Z"))!).toISOString()).toBe("2026-03-02T14:00:00.000Z");
  });
});

describe("retry backoff", () => {
  const retry = { attempts: 5, backoff: "exponential" as const, delayMs: 1_000, maxDelayMs: 5_000 };
  it("doubles per attempt up to the cap", () => {
    expect([2, 3, 4, 5].map((n) => retryDelayMs(retry, n))).toEqual([1_000, 2_000, 4_000, 5_000]);
  });
  it("stays fixed when asked", () => {
    expect([2, 3].map((n) => retryDelayMs({ ...retry, backoff: "fixed" }, n))).toEqual([1_000, 1_000]);
  });
});

describe("ids and cursors", () => {
  it("makes strictly increasing UUIDv7s, also within one millisecond", () => {
    const ids = Array.from({ length: 2000 }, () => uuidv7(1_700_000_000_000));
    expect(ids.every((id) => UUID_PATTERN.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]![14]).toBe("7");
  });
  it("round-trips cursors and rejects tampered ones", () => {
    const id = uuidv7();
    expect(decodeCursor(encodeCursor(id))).toBe(id);
    expect(() => decodeCursor("garbage")).toThrow(/cursor is invalid/);
    expect(() => decodeCursor(Buffer.from('{"before":"x"}').toString("base64url"))).toThrow(/cursor is invalid/);
  });
  it("parses ISO times and epoch milliseconds", () => {
    expect(parseTime("2026-01-01T00:00:00Z", "since")).toBe(Date.parse("2026-01-01T00:00:00Z"));
    expect(parseTime("1700000000000", "since")).toBe(1_700_000_000_000);
    expect(() => parseTime("tuesday", "since")).toThrow(/since must be an ISO 8601/);
  });
});

describe("stack mapping", () => {
  // A one-line bundle whose column 10 maps to src.ts line 3 column 5 (VLQ "SAEI": +9 cols, src 0, +2 lines, +4 cols).
  const map = JSON.stringify({ version: 3, sources: ["workflows/src.ts"], names: [], mappings: "SAEI" });
  it("rewrites bundle positions to the user's file and drops engine frames", () => {
    const stack = "Error: x\n    at run (bifrost-bundle.js:1:10)\n    at invoke (bifrost-prelude.js:200:3)";
    const mapped = mapStack(stack, map);
    expect(mapped).toBe("Error: x\n    at run (workflows/src.ts:3:5)");
    expect(firstUserFrame(mapped)).toEqual({ file: "workflows/src.ts", line: 3, column: 5 });
  });
});

describe("error registry", () => {
  it("gives every code a status and a hint", () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z_]+$/);
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.hint.length).toBeGreaterThan(10);
    }
  });
});
