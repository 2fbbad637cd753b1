import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { BifrostError } from "../../common/errors.js";
import { capString, DEFAULT_JSON_DEPTH, stringifyBounded, valueDepthExceeds } from "../../common/json-bounds.js";
import { describePath, findForbiddenKey } from "../forbidden-keys.js";
import { linearRegExp } from "../linear-regexp.js";

// ajv-formats is CommonJS: its default export arrives wrapped under ESM interop.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

/** Deepest nesting of params (`{"x": [1]}` is 2 deep). */
export const PARAMS_MAX_DEPTH = DEFAULT_JSON_DEPTH;
/** Largest params as JSON text, in characters. Params are stored with the run and copied into its sandbox. */
export const PARAMS_MAX_LENGTH = 512 * 1024;
/** Problems named in the message and in `details.problems`; a 100,000-item array can fail 100,000 times. */
const MAX_PROBLEMS = 20;

type Problem = { path: string; message: string; keyword: string; params?: Record<string, unknown> };

function invalid(workflow: string, problems: Problem[], summary: string[]): BifrostError {
  return new BifrostError("INVALID_PARAMS", `Invalid params for workflow "${workflow}": ${summary.join("; ")}`, { details: { problems } });
}

/**
 * Validates run params against a workflow's JSON Schema; defaults in the schema are applied.
 * Params come from a request body or `bifrost run --params`: they are bounded (depth, then size)
 * before anything recurses over them, and the schema's patterns run on a linear-time engine.
 */
export class ParamsValidator {
  private readonly ajv = addFormats(new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: false, code: { regExp: linearRegExp } }));
  private readonly cache = new Map<string, ValidateFunction>();

  validate(workflow: { name: string; version: string; params: Record<string, unknown> }, params: unknown): unknown {
    // Absent params are the defaults; null is a value like any other, which the schema judges.
    const copy = boundedCopy(workflow.name, params === undefined ? {} : params);
    const check = this.compiled(workflow);
    if (check(copy)) return copy;
    const errors = check.errors ?? [];
    const shown = errors.slice(0, MAX_PROBLEMS);
    const summary = shown.map(describe);
    if (errors.length > shown.length) summary.push(`and ${errors.length - shown.length} more`);
    throw invalid(workflow.name, shown.map(problemOf), summary);
  }

  private compiled(workflow: { name: string; version: string; params: Record<string, unknown> }): ValidateFunction {
    const key = `${workflow.name}@${workflow.version}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    let check: ValidateFunction;
    try {
      check = this.ajv.compile(workflow.params);
    } catch (err) {
      // Registration compiles the same schema, so this is a version stored before a rule was added.
      throw new BifrostError("WORKFLOW_INVALID", `The params schema of workflow "${workflow.name}" cannot be used: ${capString((err as Error).message, 300)}`, {
        details: { workflow: workflow.name, version: workflow.version },
        fix: "Fix the params schema in the workflow's module; saving it registers the module again.",
      });
    } finally {
      // ajv keeps every compiled schema (and refuses a second one with the same $id): the
      // cache above is the one that matters.
      this.ajv.removeSchema(workflow.params);
    }
    this.cache.set(key, check);
    return check;
  }
}

/**
 * A JSON copy of the params (defaults are filled into it, never into the caller's object), made
 * only after depth and size are known to be within bounds: structuredClone and JSON.stringify
 * both recurse and throw a RangeError on a 3,000-deep value.
 */
function boundedCopy(workflow: string, params: unknown): unknown {
  if (valueDepthExceeds(params, PARAMS_MAX_DEPTH)) {
    const message = `nest more than ${PARAMS_MAX_DEPTH} levels deep`;
    throw invalid(workflow, [{ path: "/", message, keyword: "maxDepth", params: { limit: PARAMS_MAX_DEPTH } }], [`params ${message}`]);
  }
  const forbidden = findForbiddenKey(params);
  if (forbidden) {
    const where = describePath("params", forbidden.path);
    const message = `contains a forbidden "${forbidden.key}" key`;
    throw invalid(workflow, [{ path: `/${forbidden.path.join("/")}`, message, keyword: "forbiddenKey", params: { key: forbidden.key } }], [`${where} ${message}`]);
  }
  const text = stringifyBounded(params, { maxDepth: PARAMS_MAX_DEPTH, maxLength: PARAMS_MAX_LENGTH });
  if (!text.ok) {
    const v = text.violation;
    const message =
      v.reason === "size"
        ? `are ${v.length} characters as JSON, more than the limit of ${PARAMS_MAX_LENGTH}: pass large data by reference`
        : v.reason === "depth"
          ? `nest more than ${PARAMS_MAX_DEPTH} levels deep`
          : `are not JSON: ${capString(v.message, 200)}`;
    throw invalid(workflow, [{ path: "/", message, keyword: v.reason === "size" ? "maxLength" : v.reason === "depth" ? "maxDepth" : "json" }], [`params ${message}`]);
  }
  return JSON.parse(text.text) as unknown;
}

/** ajv's problem, with every string it echoes from the request cut to a readable length. */
function problemOf(e: ErrorObject): Problem {
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.params as Record<string, unknown>)) params[k] = typeof v === "string" ? capString(v, 200) : v;
  return { path: capString(e.instancePath || "/", 200), message: e.message ?? "invalid", keyword: e.keyword, params };
}

function describe(e: ErrorObject): string {
  const where = capString(e.instancePath ? `params${e.instancePath.replaceAll("/", ".")}` : "params", 200);
  const p = e.params as { additionalProperty?: string; missingProperty?: string };
  if (e.keyword === "additionalProperties") return `${where}: unknown property "${capString(String(p.additionalProperty), 100)}"`;
  if (e.keyword === "required") return `${where}: missing required property "${capString(String(p.missingProperty), 100)}"`;
  return `${where} ${e.message ?? "is invalid"}`;
}
