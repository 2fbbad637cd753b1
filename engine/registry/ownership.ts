import { existsSync } from "node:fs";
import { BifrostError } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";
import { NAME_PATTERN } from "./definition.js";

/**
 * Who may hold a workflow name, and what a module sent as text (PUT /api/workflows/:name,
 * `bifrost workflows deploy`) must be before anything compiles it.
 */

/** Where a registered module comes from: a file (its path) or text (no file). */
interface Holder {
  sourceKind: "file" | "api";
  file: string | null;
}

/** The largest module text accepted from an API client or `bifrost workflows deploy`. */
export const MAX_SOURCE_BYTES = 1024 * 1024;

/**
 * Checks a module sent as text before anything compiles it: a valid workflow name, and at most
 * MAX_SOURCE_BYTES of text.
 */
export function checkTextModule(name: string, source: string): void {
  if (!NAME_PATTERN.test(name)) {
    const quoted = JSON.stringify(capString(name, 64));
    throw new BifrostError("WORKFLOW_INVALID", `${quoted} is not a valid workflow name`, {
      details: { name: capString(name, 64), reason: `a workflow name must match ${NAME_PATTERN}` },
      fix: 'Name the workflow with lowercase letters, digits, "_" and "-", starting with a letter (at most 64 characters), in the module and where it is sent.',
    });
  }
  const bytes = Buffer.byteLength(source, "utf8");
  if (bytes > MAX_SOURCE_BYTES) {
    throw new BifrostError("PAYLOAD_TOO_LARGE", `${name}.ts: the module is ${bytes} bytes long; a module sent as text has at most ${MAX_SOURCE_BYTES} bytes (1 MB)`, {
      details: { file: `${name}.ts`, bytes, limit: MAX_SOURCE_BYTES },
      fix: "Make the module smaller: move large data out of its text (fetch it in a step, or put it in an npm package installed for the engine).",
    });
  }
}

/** Why `workflow` may not take its name from `existing`, if it may not: a name is held by one module. */
export function nameConflict(workflow: Holder & { definition: { name: string } }, existing: Holder | undefined, displayFile: string): BifrostError | undefined {
  const name = workflow.definition.name;
  if (!existing || existing.file === workflow.file) return undefined;
  // A file deleted since the last reload holds no name (the next reload would unregister it).
  if (existing.sourceKind === "file" && existing.file !== null && !existsSync(existing.file)) return undefined;
  const owner = existing.file ?? "a module sent as text";
  const fix =
    workflow.sourceKind === "api"
      ? `A workflow defined by a file cannot be replaced by a module sent as text: edit ${owner} instead (the engine reloads it), or give this module another name.`
      : existing.sourceKind === "api"
        ? `Rename this module, or first unregister the workflow "${name}" that was sent as text (DELETE /api/workflows/${name}).`
        : undefined;
  return new BifrostError("WORKFLOW_NAME_CONFLICT", `${displayFile}: workflow name "${name}" is already registered by ${owner}`, {
    details: { file: displayFile, name, registeredBy: owner },
    ...(fix === undefined ? {} : { fix }),
  });
}
