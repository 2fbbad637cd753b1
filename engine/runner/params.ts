import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { BifrostError } from "../../common/errors.js";

// ajv-formats is CommonJS: its default export arrives wrapped under ESM interop.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

/** Validates run params against a workflow's JSON Schema; defaults in the schema are applied. */
export class ParamsValidator {
  private readonly ajv = addFormats(new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: false }));
  private readonly cache = new Map<string, ValidateFunction>();

  validate(workflow: { name: string; version: string; params: Record<string, unknown> }, params: unknown): unknown {
    const key = `${workflow.name}@${workflow.version}`;
    let check = this.cache.get(key);
    if (!check) {
      check = this.ajv.compile(workflow.params);
      this.cache.set(key, check);
    }
    // Validate a copy: defaults are filled into it, never into the caller's object.
    const value = structuredClone(params ?? {});
    if (check(value)) return value;
    const problems = (check.errors ?? []).map(describe);
    throw new BifrostError("INVALID_PARAMS", `Invalid params for workflow "${workflow.name}": ${problems.join("; ")}`, {
      details: { problems: (check.errors ?? []).map((e) => ({ path: e.instancePath || "/", message: e.message ?? "invalid", keyword: e.keyword, params: e.params })) },
    });
  }
}

function describe(e: ErrorObject): string {
  const where = e.instancePath ? `params${e.instancePath.replaceAll("/", ".")}` : "params";
  if (e.keyword === "additionalProperties") return `${where}: unknown property "${String((e.params as { additionalProperty?: string }).additionalProperty)}"`;
  if (e.keyword === "required") return `${where}: missing required property "${String((e.params as { missingProperty?: string }).missingProperty)}"`;
  return `${where} ${e.message ?? "is invalid"}`;
}
