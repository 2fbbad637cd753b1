import { openSync, closeSync, fstatSync, readSync } from "node:fs";
import { basename, extname } from "node:path";
import { BifrostError, isBifrostError } from "../../common/errors.js";
import { workflowView } from "../api/views.js";
import type { Engine } from "../engine.js";
import { MAX_SOURCE_BYTES } from "../registry/registry.js";
import { clientFromEnv, type ApiClient } from "./client.js";
import { dim } from "./format.js";

/**
 * `bifrost workflows deploy <file> [--name N]`: registers a module file's text as PUT
 * /api/workflows/:name does: on the server when BIFROST_URL and BIFROST_API_KEY are set (an admin
 * key), else embedded on the data directory. Either way it is a workflow sent as text (`sourceKind:
 * "api"`), which is what a running server on that database serves from its next trigger on.
 */

type WorkflowView = ReturnType<typeof workflowView>;

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

function usage(message: string): never {
  throw new BifrostError("CLI_USAGE", message);
}

export async function deployCommand(rest: string[], options: { json: boolean; name?: string | undefined }, openEngine: () => Promise<Engine>): Promise<number> {
  const file = rest[0];
  if (!file) usage("missing argument: bifrost workflows deploy <file> [--name N]");
  if (rest.length > 1) usage(`workflows deploy takes one module file (got ${rest.length})`);
  const source = readModule(file);
  const name = options.name ?? basename(file, extname(file));
  const client = clientFromEnv();
  let result: { view: WorkflowView; created: boolean };
  try {
    result = client ? await viaServer(client, name, source) : await embedded(openEngine, name, source);
  } catch (e) {
    throw inTermsOf(e, file, name);
  }
  const { view, created } = result;
  if (options.json) out(JSON.stringify(view, null, 2));
  else {
    out(`${created ? "registered" : "replaced"} ${view.name} version ${view.version}${client ? ` on ${client.url}` : ""}`);
    err(dim(`runs already queued or running finish on the version they were triggered with; new runs use ${view.version}`));
  }
  return 0;
}

/** The file's text, refused before it is read whole when it is over the limit. */
function readModule(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const stat = fstatSync(fd);
    if (!stat.isFile()) usage(`${file} is not a file: pass the path of one workflow module`);
    if (stat.size > MAX_SOURCE_BYTES) {
      throw new BifrostError("PAYLOAD_TOO_LARGE", `${file} is ${stat.size} bytes long; a deployed module has at most ${MAX_SOURCE_BYTES} bytes (1 MB)`, {
        fix: "Make the module smaller: move large data out of its text (fetch it in a step, or put it in an npm package installed for the engine).",
      });
    }
    const buffer = Buffer.alloc(stat.size);
    let read = 0;
    while (read < stat.size) {
      const n = readSync(fd, buffer, read, stat.size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString("utf8");
  } catch (e) {
    if (isBifrostError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    return usage(`cannot read ${file}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function viaServer(client: ApiClient, name: string, source: string): Promise<{ view: WorkflowView; created: boolean }> {
  const reply = await client.request<WorkflowView>("PUT", `/api/workflows/${encodeURIComponent(name)}`, { body: { source }, timeoutMs: 120_000 });
  return { view: reply.body, created: reply.status === 201 };
}

async function embedded(openEngine: () => Promise<Engine>, name: string, source: string): Promise<{ view: WorkflowView; created: boolean }> {
  const engine = await openEngine();
  try {
    const { workflow, created } = await engine.registry.registerSource(name, source);
    return { view: workflowView(workflow, engine.registry.problemFor(workflow), engine.now()), created };
  } finally {
    await engine.stop(0);
  }
}

/**
 * The registry names a module sent as text `<name>.ts`; in the terminal it is the user's file,
 * and a name that does not match is fixed with --name.
 */
function inTermsOf(e: unknown, file: string, name: string): unknown {
  if (!isBifrostError(e)) return e;
  const details = e.details as { file?: unknown; name?: unknown; sentAs?: unknown } | undefined;
  const textFile = `${name}.ts`;
  const message = details?.file === textFile && e.message.startsWith(textFile) ? file + e.message.slice(textFile.length) : e.message;
  if (e.code === "WORKFLOW_INVALID" && typeof details?.name === "string" && details.sentAs === name) {
    return new BifrostError(e.code, message, {
      details: e.details,
      fix: `Deploy it with --name ${details.name}, or rename the module to "${name}" (without --name, the name is the file's name).`,
    });
  }
  if (message === e.message) return e;
  return new BifrostError(e.code, message, { details: e.details, ...(e.givenFix === undefined ? {} : { fix: e.givenFix }) });
}
