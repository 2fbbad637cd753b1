import { describe, expect, it } from "vitest";
import { DEFINITION_LIMITS, validateDefinition } from "../../engine/registry/definition.js";
import { CRON_MAX_LENGTH, TIMEZONE_MAX_LENGTH } from "../../engine/scheduler/index.js";

/** The problems of a definition that must be refused; each is one line a person can read. */
function problems(raw: Record<string, unknown>): string[] {
  const result = validateDefinition({ name: "w", ...raw });
  if (result.ok) throw new Error(`expected ${JSON.stringify(raw).slice(0, 200)} to be refused`);
  for (const p of result.problems) expect(p.length, p.slice(0, 200)).toBeLessThan(600);
  return result.problems;
}

const withPattern = (pattern: string) => ({ params: { type: "object", properties: { s: { type: "string", pattern } } } });

describe("workflow definition bounds (guest strings are measured before any regex or parser)", () => {
  it("refuses patterns the linear-time engine cannot match, naming the pattern", () => {
    const cases: [string, RegExp][] = [
      ["^(?=a)a$", /pattern "\^\(\?=a\)a\$" uses a lookahead/],
      ["(?<!x)y", /uses a lookbehind/],
      ["^(a)\\1$", /pattern "\^\(a\)\\\\1\$" uses a backreference/],
      ["(?<n>a)\\k<n>", /uses a named backreference/],
      ["a{,3", /is not a valid regular expression/],
      ["x".repeat(1001), /is 1001 characters long; a pattern may have at most 1000/],
    ];
    for (const [pattern, expected] of cases) expect(problems(withPattern(pattern)).join("\n")).toMatch(expected);
  });

  it("checks patternProperties keys with the same engine", () => {
    const out = problems({ params: { type: "object", patternProperties: { "^(\\w)\\1$": { type: "string" } } } });
    expect(out.join("\n")).toMatch(/params: pattern .* uses a backreference/);
  });

  it("accepts patterns with nested quantifiers: matching them is linear", () => {
    expect(validateDefinition({ name: "w", ...withPattern("^(a+)+$") }).ok).toBe(true);
    expect(validateDefinition({ name: "w", ...withPattern("^(?<id>[A-Z]{3})-\\d+$") }).ok).toBe(true);
  });

  it("bounds the description and other free text", () => {
    expect(validateDefinition({ name: "w", description: "d".repeat(DEFINITION_LIMITS.description) }).ok).toBe(true);
    expect(problems({ description: "d".repeat(DEFINITION_LIMITS.description + 1) }).join()).toMatch(/description: 1001 characters; a description has at most 1000/);
    expect(problems({ name: "n".repeat(100_000) }).join()).toMatch(/^name: "n+… \[truncated\]" must match/);
    expect(problems({ schedule: { cron: "0 ".repeat(5000) } }).join()).toMatch(new RegExp(`schedule.cron: .* is 10000 characters long; a cron expression has at most ${CRON_MAX_LENGTH}`));
    expect(problems({ schedule: { cron: "0 9 * * 1", timezone: "Z".repeat(100_000) } }).join()).toMatch(
      new RegExp(`schedule.timezone: .* is 100000 characters long; an IANA time zone name has at most ${TIMEZONE_MAX_LENGTH}`),
    );
    expect(problems({ timeout: "1".repeat(100_000) + "s" }).join()).toMatch(/timeout: .* is 100001 characters long; a duration has at most 32/);
    expect(problems({ retry: { delay: "9".repeat(50_000) } }).join()).toMatch(/retry.delay: .* characters long/);
  });

  it("bounds durations below what a Node timer can hold", () => {
    expect(problems({ timeout: "30d" }).join()).toMatch(/timeout: "30d" is longer than the limit of 7 days/);
    expect(problems({ chunkTimeout: 1e15 }).join()).toMatch(/chunkTimeout: 1000000000000000 is longer than the limit of 7 days/);
    expect(validateDefinition({ name: "w", timeout: "7d" }).ok).toBe(true);
  });

  it("lists a handful of unknown fields, not every one of them", () => {
    const raw: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) raw[`field${i}`] = i;
    const out = problems(raw);
    expect(out).toHaveLength(6);
    expect(out[5]).toBe("workflow: 9995 more unknown fields");
  });

  it("measures the whole definition before compiling its schema", () => {
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 5_000; i++) deep = { type: "object", properties: { x: deep } };
    expect(problems({ params: deep })).toEqual([`the workflow definition nests more than ${DEFINITION_LIMITS.maxDepth} levels deep`]);
    const properties: Record<string, unknown> = {};
    for (let i = 0; i < 20_000; i++) properties[`p${i}`] = { type: "string", description: "a property" };
    expect(problems({ params: { type: "object", properties } }).join()).toMatch(/^the workflow definition is \d+ characters as JSON, more than the limit of 262144/);
  });

  it("compiles a schema with an $id again when the module is registered again", () => {
    const raw = () => ({ name: "w", params: { $id: "https://example.com/w", type: "object" } });
    expect(validateDefinition(raw()).ok).toBe(true);
    expect(validateDefinition(raw()).ok).toBe(true);
  });
});
