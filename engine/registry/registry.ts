import { readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { WorkflowSandbox, firstUserFrame, type SandboxLimits } from "../../sandbox/index.js";
import type { Storage, WorkflowRecord } from "../../storage/types.js";
import { BifrostError, type ErrorData } from "../../common/errors.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";
import { compileModule, type CompiledModule, type ModuleSource } from "./compile.js";
import { validateDefinition, type WorkflowDefinition } from "./definition.js";

export interface RegisteredWorkflow {
  definition: WorkflowDefinition;
  version: string;
  sourceKind: "file" | "api";
  /** Absolute path of the module file, for file-registered workflows. */
  file: string | null;
  module: CompiledModule;
  /** The module's source text as registered (the file's contents for file workflows). */
  source: string;
  registeredAt: number;
  updatedAt: number;
}

/** A module that is not (or no longer) accepted; the last good version, if any, keeps serving. */
export interface RegistrationProblem {
  file: string | null;
  name?: string;
  error: ErrorData;
  at: number;
}

const MODULE_FILE = /^[^._][^/]*(?<!\.d)\.(ts|mts|js|mjs)$/;

export interface RegistryDeps {
  storage: Storage;
  events: EngineEvents;
  logger: Logger;
  limits: SandboxLimits;
  workflowsDir: string;
  now: () => number;
}

/**
 * The set of registered workflows: compiled bundles plus validated definitions, persisted so that
 * any engine process (and restarts) can run them. Registration never throws away a good version.
 */
export class WorkflowRegistry {
  private readonly byName = new Map<string, RegisteredWorkflow>();
  private readonly problemsByKey = new Map<string, RegistrationProblem>();

  constructor(private readonly deps: RegistryDeps) {}

  get(name: string): RegisteredWorkflow | undefined {
    return this.byName.get(name);
  }

  list(): RegisteredWorkflow[] {
    return [...this.byName.values()].sort((a, b) => a.definition.name.localeCompare(b.definition.name));
  }

  problems(): RegistrationProblem[] {
    return [...this.problemsByKey.values()];
  }

  /** Problem recorded for a workflow's file (or name), shown beside its last good version. */
  problemFor(workflow: RegisteredWorkflow): RegistrationProblem | undefined {
    return this.problemsByKey.get(keyOf(workflow));
  }

  /**
   * Problems of modules with no good version to fall back on: what `problems` lists in
   * GET /api/workflows and `bifrost workflows list`. A module that still serves its last good
   * version shows its problem as that workflow's `lastError` instead.
   */
  unloaded(): RegistrationProblem[] {
    const serving = new Set([...this.byName.values()].map(keyOf));
    return [...this.problemsByKey.entries()].filter(([key]) => !serving.has(key)).map(([, problem]) => problem);
  }

  /** Loads what earlier processes registered. */
  async loadStored(): Promise<void> {
    for (const record of await this.deps.storage.workflows.list()) {
      const result = validateDefinition(record.meta);
      if (result.ok) this.byName.set(record.name, fromRecord(record, result.definition));
    }
  }

  /** Re-reads one workflow from storage (another process may have registered or replaced it). */
  async refresh(name: string): Promise<RegisteredWorkflow | undefined> {
    const record = await this.deps.storage.workflows.get(name);
    if (!record) return this.byName.get(name);
    const result = validateDefinition(record.meta);
    if (!result.ok) return this.byName.get(name);
    const workflow = fromRecord(record, result.definition);
    this.byName.set(name, workflow);
    return workflow;
  }

  /**
   * Compiles every module file in the workflows directory. File workflows whose file is gone are
   * unregistered; a file that fails keeps its last good version.
   */
  async loadDirectory(): Promise<{ registered: RegisteredWorkflow[]; problems: RegistrationProblem[] }> {
    const dir = resolve(this.deps.workflowsDir);
    let files: string[] = [];
    try {
      files = readdirSync(dir)
        .filter((f) => MODULE_FILE.test(f))
        .map((f) => join(dir, f))
        .filter((f) => statSync(f).isFile())
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      this.deps.logger.warn({ dir }, "workflows directory does not exist; no file workflows loaded");
    }
    // Deleted files go first, so that a module taking over a name (a renamed file) is not refused
    // in favour of a file that no longer exists.
    const present = new Set(files);
    for (const [key] of this.problemsByKey) {
      if (!key.startsWith("api:") && !present.has(key)) this.problemsByKey.delete(key);
    }
    for (const wf of [...this.byName.values()]) {
      if (wf.sourceKind === "file" && wf.file && !present.has(wf.file)) await this.unregister(wf.definition.name);
    }
    const registered = new Map<string, RegisteredWorkflow>();
    const tryFile = async (file: string) => {
      try {
        registered.set(file, await this.registerFile(file));
      } catch {
        // registerFile recorded the problem.
      }
    };
    const namesBefore = [...this.byName.keys()];
    for (const file of files) await tryFile(file);
    // A name refused because another file held it may have been freed by a file loaded after it.
    if (namesBefore.some((name) => !this.byName.has(name))) {
      for (const file of files) {
        if (this.problemsByKey.get(file)?.error.code === "WORKFLOW_NAME_CONFLICT") await tryFile(file);
      }
    }
    const problems = files.flatMap((f) => this.problemsByKey.get(f) ?? []);
    return { registered: [...registered.values()], problems };
  }

  async registerFile(file: string): Promise<RegisteredWorkflow> {
    const path = resolve(file);
    try {
      const workflow = await this.prepare({ kind: "file", file: path }, path);
      const previous = [...this.byName.values()].find((w) => w.file === path && w.definition.name !== workflow.definition.name);
      const { stored, changed } = await this.commit(workflow);
      if (previous) await this.unregister(previous.definition.name);
      this.clearProblem(path, stored, changed);
      return stored;
    } catch (err) {
      this.recordProblem(path, undefined, err);
      throw err;
    }
  }

  /** Registers a module from source text (PUT /api/workflows/:name); its name must match. */
  async registerSource(name: string, source: string): Promise<RegisteredWorkflow> {
    try {
      const workflow = await this.prepare({ kind: "api", name, source, resolveDir: resolve(this.deps.workflowsDir) }, null);
      if (workflow.definition.name !== name) {
        throw new BifrostError("WORKFLOW_INVALID", `${name}.ts: the module is named "${workflow.definition.name}" but was registered as "${name}"`, {
          details: { file: `${name}.ts`, reason: "name mismatch" },
        });
      }
      const { stored, changed } = await this.commit(workflow);
      this.clearProblem(`api:${name}`, stored, changed);
      return stored;
    } catch (err) {
      this.recordProblem(`api:${name}`, name, err);
      throw err;
    }
  }

  async unregister(name: string): Promise<boolean> {
    const existed = this.byName.delete(name);
    const deleted = await this.deps.storage.workflows.delete(name);
    if (existed || deleted) this.deps.events.emit("workflow:removed", { name });
    return existed || deleted;
  }

  private async prepare(source: ModuleSource, file: string | null): Promise<RegisteredWorkflow> {
    const module = await compileModule(source);
    const displayFile = source.kind === "file" ? basename(source.file) : `${source.name}.ts`;
    const definition = await this.readDefinition(module, displayFile);
    const existing = this.byName.get(definition.name);
    if (existing && existing.file !== file) {
      const owner = existing.file ?? "the API";
      throw new BifrostError("WORKFLOW_NAME_CONFLICT", `${displayFile}: workflow name "${definition.name}" is already registered by ${owner}`, {
        details: { file: displayFile, name: definition.name, registeredBy: owner },
      });
    }
    const now = this.deps.now();
    return {
      definition,
      version: module.version,
      sourceKind: source.kind,
      file,
      module,
      source: source.kind === "file" ? readFileSync(source.file, "utf8") : source.source,
      registeredAt: existing?.registeredAt ?? now,
      updatedAt: now,
    };
  }

  private async readDefinition(module: CompiledModule, displayFile: string): Promise<WorkflowDefinition> {
    let sandbox: WorkflowSandbox | undefined;
    try {
      sandbox = await WorkflowSandbox.create(module, this.deps.limits);
      const outcome = await sandbox.readDefinition();
      if (outcome.kind === "threw") {
        const frame = outcome.error.stack ? firstUserFrame(outcome.error.stack) : undefined;
        const where = frame ? `${frame.file}:${frame.line}:${frame.column}` : displayFile;
        throw new BifrostError("WORKFLOW_INVALID", `${where}: ${outcome.error.message}`, {
          details: { file: frame?.file ?? displayFile, line: frame?.line, column: frame?.column, reason: outcome.error.message, stack: outcome.error.stack },
        });
      }
      if (outcome.kind !== "returned") {
        const reason =
          outcome.kind === "limit"
            ? `loading the module exceeded the sandbox ${outcome.limit} limit`
            : outcome.kind === "refused"
              ? `the workflow definition was refused: ${outcome.message}`
              : "the sandbox failed while loading the module";
        throw new BifrostError("WORKFLOW_INVALID", `${displayFile}: ${reason}`, { details: { file: displayFile, reason } });
      }
      const result = validateDefinition(outcome.value);
      if (!result.ok) {
        throw new BifrostError("WORKFLOW_INVALID", `${displayFile}: ${result.problems.join("; ")}`, {
          details: { file: displayFile, reason: result.problems.join("; "), problems: result.problems },
        });
      }
      return result.definition;
    } catch (err) {
      if (err instanceof BifrostError) throw err;
      // Syntax errors surface when isolated-vm compiles the bundle.
      throw new BifrostError("WORKFLOW_COMPILE_ERROR", `${displayFile}: ${(err as Error).message}`, { details: { file: displayFile, reason: (err as Error).message } });
    } finally {
      sandbox?.dispose();
    }
  }

  private async commit(workflow: RegisteredWorkflow): Promise<{ stored: RegisteredWorkflow; changed: boolean }> {
    const name = workflow.definition.name;
    const current = this.byName.get(name);
    if (current && current.version === workflow.version && current.sourceKind === workflow.sourceKind) return { stored: current, changed: false };
    await this.deps.storage.workflows.upsert(toRecord(workflow));
    this.byName.set(name, workflow);
    this.deps.events.emit("workflow:registered", { name, version: workflow.version, sourceKind: workflow.sourceKind, file: workflow.file });
    this.deps.logger.info({ workflow: name, version: workflow.version, file: workflow.file }, "workflow registered");
    return { stored: workflow, changed: true };
  }

  /**
   * A module was accepted: its problem goes. When the accepted text is the last good one (an edit
   * undone), nothing new was registered, so say here that the module is fine again.
   */
  private clearProblem(key: string, workflow: RegisteredWorkflow, changed: boolean): void {
    if (!this.problemsByKey.delete(key) || changed) return;
    const { name } = workflow.definition;
    this.deps.events.emit("workflow:registered", { name, version: workflow.version, sourceKind: workflow.sourceKind, file: workflow.file });
    this.deps.logger.info({ workflow: name, version: workflow.version, file: workflow.file }, "workflow accepted again; its earlier problem is cleared");
  }

  private recordProblem(key: string, name: string | undefined, err: unknown): RegistrationProblem {
    const error: ErrorData =
      err instanceof BifrostError ? err.toData() : { code: "INTERNAL", message: err instanceof Error ? err.message : String(err) };
    const problem: RegistrationProblem = { file: key.startsWith("api:") ? null : key, error, at: this.deps.now() };
    if (name !== undefined) problem.name = name;
    this.problemsByKey.set(key, problem);
    this.deps.events.emit("workflow:rejected", { file: problem.file, ...(name === undefined ? {} : { name }), error });
    const kept = [...this.byName.values()].find((w) => (problem.file ? w.file === problem.file : w.definition.name === name));
    this.deps.logger.error(
      { file: problem.file, code: error.code, details: error.details, keptVersion: kept?.version },
      kept ? `workflow rejected, keeping last good version: ${error.message}` : `workflow rejected: ${error.message}`,
    );
    return problem;
  }
}

function keyOf(workflow: RegisteredWorkflow): string {
  return workflow.file ?? `api:${workflow.definition.name}`;
}

function toRecord(w: RegisteredWorkflow): WorkflowRecord {
  return {
    name: w.definition.name,
    version: w.version,
    sourceKind: w.sourceKind,
    file: w.file,
    source: w.source,
    code: w.module.code,
    sourceMap: w.module.sourceMap,
    meta: rawMeta(w.definition),
    registeredAt: w.registeredAt,
    updatedAt: w.updatedAt,
  };
}

/** Stored metadata in the module's own shape, so it revalidates through the same function. */
function rawMeta(d: WorkflowDefinition): Record<string, unknown> {
  const meta: Record<string, unknown> = {
    name: d.name,
    params: d.params,
    timeout: d.timeoutMs,
    chunkTimeout: d.chunkTimeoutMs,
    retry: { attempts: d.retry.attempts, backoff: d.retry.backoff, delay: d.retry.delayMs, maxDelay: d.retry.maxDelayMs },
  };
  if (d.description !== null) meta.description = d.description;
  if (d.webhook) meta.webhook = true;
  if (d.schedule) {
    meta.schedule = {
      cron: d.schedule.cron,
      timezone: d.schedule.timezone,
      overlap: d.schedule.overlap,
      catchUp: d.schedule.catchUp,
      catchUpWindow: d.schedule.catchUpWindowMs,
    };
  }
  return meta;
}

function fromRecord(record: WorkflowRecord, definition: WorkflowDefinition): RegisteredWorkflow {
  return {
    definition,
    version: record.version,
    sourceKind: record.sourceKind,
    file: record.file,
    module: { code: record.code, sourceMap: record.sourceMap, version: record.version },
    source: record.source,
    registeredAt: record.registeredAt,
    updatedAt: record.updatedAt,
  };
}
