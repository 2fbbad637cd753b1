import { describe, expect, it } from "vitest";
import { BifrostError } from "../../common/errors.js";
import { linearRegExp } from "../../engine/linear-regexp.js";
import { PARAMS_MAX_DEPTH, PARAMS_MAX_LENGTH, ParamsValidator } from "../../engine/runner/params.js";

const open = { name: "w", version: "v1", params: { type: "object" } };

function nested(levels: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

function refusal(fn: () => unknown): BifrostError {
  try {
    fn();
  } catch (err) {
    if (err instanceof BifrostError) return err;
    throw new Error(`expected a BifrostError, got ${String(err)}`);
  }
  throw new Error("expected a refusal, got a value");
}

describe("params bounds (HTTP body and `bifrost run --params` share them)", () => {
  it("refuses params nested past the bound with INVALID_PARAMS, not a RangeError", () => {
    const v = new ParamsValidator();
    for (const levels of [3_000, 100_000]) {
      const err = refusal(() => v.validate(open, { x: nested(levels) }));
      expect(err.code).toBe("INVALID_PARAMS");
      expect(err.message).toContain(`nest more than ${PARAMS_MAX_DEPTH} levels deep`);
      expect(err.details).toEqual({ problems: [expect.objectContaining({ path: "/", keyword: "maxDepth" })] });
    }
    // At the bound exactly, params pass (the outer object is one level).
    expect(v.validate(open, { x: nested(PARAMS_MAX_DEPTH - 1) })).toEqual({ x: nested(PARAMS_MAX_DEPTH - 1) });
  });

  it("refuses params larger than the bound as JSON", () => {
    const v = new ParamsValidator();
    const err = refusal(() => v.validate(open, { blob: "x".repeat(PARAMS_MAX_LENGTH) }));
    expect(err.code).toBe("INVALID_PARAMS");
    expect(err.message).toMatch(new RegExp(`more than the limit of ${PARAMS_MAX_LENGTH}`));
    expect(err.message.length).toBeLessThan(500);
    expect(v.validate(open, { blob: "x".repeat(1000) })).toEqual({ blob: "x".repeat(1000) });
  });

  it("refuses prototype-altering keys wherever they are", () => {
    const v = new ParamsValidator();
    const proto = refusal(() => v.validate(open, JSON.parse('{"a": [{"__proto__": {"polluted": true}}]}')));
    expect(proto).toMatchObject({ code: "INVALID_PARAMS", message: expect.stringContaining('params.a[0] contains a forbidden "__proto__" key') });
    const ctor = refusal(() => v.validate(open, JSON.parse('{"constructor": {"prototype": {"polluted": true}}}')));
    expect(ctor.message).toContain('forbidden "constructor.prototype" key');
    // A key named "constructor" holding plain data is fine.
    expect(v.validate(open, { constructor: "x" })).toEqual({ constructor: "x" });
  });

  it("copies params and fills defaults into the copy, never into the caller's object", () => {
    const v = new ParamsValidator();
    const input = { a: 1 };
    const out = v.validate({ ...open, params: { type: "object", properties: { b: { type: "number", default: 2 } } } }, input);
    expect(out).toEqual({ a: 1, b: 2 });
    expect(input).toEqual({ a: 1 });
  });

  it("caps what an invalid value echoes back", () => {
    const v = new ParamsValidator();
    const schema = { type: "object", additionalProperties: false, properties: { ok: { type: "string" } } };
    const huge = "k".repeat(100_000);
    const err = refusal(() => v.validate({ ...open, params: schema }, { [huge]: 1 }));
    expect(err.code).toBe("INVALID_PARAMS");
    expect(err.message.length).toBeLessThan(1000);
    const many = refusal(() => v.validate({ ...open, version: "v2", params: { type: "array", items: { type: "string" } } }, Array.from({ length: 5000 }, () => 1)));
    expect((many.details as { problems: unknown[] }).problems).toHaveLength(20);
    expect(many.message).toContain("and 4980 more");
  });

  it("matches schema patterns in linear time: a catastrophic pattern answers at once", () => {
    const v = new ParamsValidator();
    const schema = { type: "object", properties: { s: { type: "string", pattern: "^(a+)+$" } } };
    // With backtracking each extra "a" doubles the time: 29 took 3.4 s, 60 would take millennia.
    // Here the test simply finishes (the suite's timeout is the only clock).
    const err = refusal(() => v.validate({ ...open, params: schema }, { s: `${"a".repeat(60)}!` }));
    expect(err.code).toBe("INVALID_PARAMS");
    expect(err.message).toContain("must match pattern");
    expect(v.validate({ ...open, params: schema }, { s: "aaaa" })).toEqual({ s: "aaaa" });
    expect(linearRegExp("^(a+)+$", "u").test(`${"a".repeat(200_000)}!`)).toBe(false);
  });

  it("keeps JavaScript pattern semantics for the common constructs", () => {
    const cases: [string, string, boolean][] = [
      ["b", "abc", true],
      ["^b", "abc", false],
      ["^\\d{3}-\\d{4}$", "555-1234", true],
      ["^[a-z_][a-z0-9_]*$", "Abc", false],
      ["^\\p{L}+$", "héllo", true],
      ["^.$", "😀", true],
      ["^(?<year>\\d{4})-\\d{2}$", "2026-01", true],
      ["^[^/]+$", "a/b", false],
      ["\\u0041", "A", true],
      ["^\\w+@\\w+\\.com$", "ada@example.com", true],
    ];
    for (const [pattern, input, expected] of cases) {
      expect({ pattern, input, result: linearRegExp(pattern, "u").test(input) }).toEqual({ pattern, input, result: expected });
      expect(new RegExp(pattern, "u").test(input)).toBe(expected);
    }
  });

  it("compiles a schema with an $id for each new version of a workflow", () => {
    const v = new ParamsValidator();
    const schema = () => ({ $id: "https://example.com/params", type: "object", properties: { n: { type: "number" } } });
    expect(v.validate({ ...open, version: "v1", params: schema() }, { n: 1 })).toEqual({ n: 1 });
    expect(v.validate({ ...open, version: "v2", params: schema() }, { n: 2 })).toEqual({ n: 2 });
  });
});
