import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { WorkflowSandbox, firstUserFrame, type SandboxLimits } from "../../sandbox/index.js";
import type { Storage, WorkflowRecord } from "../../storage/types.js";
import { BifrostError, type ErrorData } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";
import type { EngineEvents } from "../events.js";
import type { Logger } from "../logger.js";
import { compileModule, type CompiledModule, type ModuleSource } from "./compile.js";
import { validateDefinition, type WorkflowDefinition } from "./definition.js";
import { definitionLine, problemField } from "./locate.js";
import { checkTextModule, nameConflict } from "./ownership.js";
import { WorkflowVersions } from "./versions.js";

export { MAX_SOURCE_BYTES } from "./ownership.js";

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

/** What registering a module sent as text did. */
export interface SourceRegistration {
  workflow: RegisteredWorkflow;
  /** No workflow had this name before. */
  created: boolean;
  /** A new version was registered (false when the text compiled to the version already serving). */
  changed: boolean;
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
  private readonly versions: WorkflowVersions;
  /** Checking a name and committing it happen one registration at a time. */
  private mutations: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: RegistryDeps) {
    this.versions = new WorkflowVersions(deps.storage, deps.logger, rawMeta);
    // A finished run of an old version may have been the last one keeping that version's bundle.
    deps.events.on("run:finished", ({ run }) => {
      if (run.workflowVersion !== this.byName.get(run.workflow)?.version) this.versions.requestSweep(run.workflow);
    });
  }

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
    // Versions left by runs that finished in a process that did not sweep (it stopped, or crashed).
    this.versions.requestSweep(null);
  }

  /**
   * The definition and bundle a run executes: the version it was triggered with (`version`; null
   * for a run recorded without one: the current version). Undefined when that version is neither
   * current nor stored any more, or the workflow is unknown.
   */
  async forRun(name: string, version: string | null): Promise<RegisteredWorkflow | undefined> {
    const cached = this.byName.get(name);
    if (cached && (version === null || cached.version === version)) return cached;
    const old = version === null ? undefined : this.versions.cached(name, version);
    if (old) return old;
    // Another process may have registered it since: the database is the source of truth.
    const current = await this.refresh(name);
    if (current && (version === null || current.version === version)) return current;
    if (version === null) return undefined;
    const stored = await this.versions.load(name, version);
    if (!stored) this.deps.logger.warn({ workflow: name, version }, "a run needs a workflow version that is not stored any more");
    return stored;
  }

  /**
   * The workflow as the database has it now, for a trigger or a lookup: another engine process (or
   * `bifrost workflows deploy` on the same data directory) may have registered a newer version or
   * removed one sent as text. One small read when the cached version is still current.
   */
  async resolve(name: string): Promise<RegisteredWorkflow | undefined> {
    const cached = this.byName.get(name);
    const version = await this.deps.storage.workflowVersions.current(name);
    if (version === undefined) {
      // A file workflow is this process's own (its file is there); text is the database's.
      if (cached?.sourceKind === "api") this.forget(name);
      return cached?.sourceKind === "api" ? undefined : cached;
    }
    if (cached && cached.version === version) return cached;
    return this.refresh(name);
  }

  /** Brings every workflow up to what the database has (for a listing): see `resolve`. */
  async sync(): Promise<void> {
    const current = new Map((await this.deps.storage.workflowVersions.currentAll()).map((r) => [r.name, r.version]));
    for (const [name, workflow] of [...this.byName]) {
      if (!current.has(name) && workflow.sourceKind === "api") this.forget(name);
    }
    for (const [name, version] of current) if (this.byName.get(name)?.version !== version) await this.refresh(name);
  }

  /**
   * Keeps the bundle of the version a run was just created with. A sweep between reading the
   * workflow and creating the run may have dropped it (a newer version was registered meanwhile);
   * once the run exists, no sweep drops it again.
   */
  async retain(workflow: RegisteredWorkflow): Promise<void> {
    try {
      await this.versions.store(workflow);
    } catch (err) {
      // The run exists: failing its trigger now would invite a duplicate. The bundle is all but
      // always stored already (since its registration); a run that does not find it fails alone.
      this.deps.logger.warn({ err, workflow: workflow.definition.name, version: workflow.version }, "could not re-store the version of a new run");
    }
  }

  /** Resolves once no sweep of old versions is running or asked for (tests, shutdown). */
  settled(): Promise<void> {
    return this.versions.settled();
  }

  /** Stops sweeping; resolves when storage may close. */
  close(): Promise<void> {
    return this.versions.close();
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
    // A file workflow of another workflows directory (another engine on this database) is not this
    // directory's to remove while its file exists.
    for (const wf of [...this.byName.values()]) {
      if (wf.sourceKind === "file" && wf.file && !present.has(wf.file) && (dirname(wf.file) === dir || !existsSync(wf.file))) await this.unregister(wf.definition.name);
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

  /**
   * Registers a module sent as text (PUT /api/workflows/:name, `bifrost workflows deploy`): its
   * name must be `name`, and it may import only "bifrost" and npm packages. A module that is
   * refused changes nothing: the version serving keeps serving, and the error is the caller's
   * answer (it is not kept as a problem of the workflow).
   */
  async registerSource(name: string, source: string): Promise<SourceRegistration> {
    const file = `${capString(name, 64)}.ts`;
    try {
      checkTextModule(name, source);
      const workflow = await this.prepare({ kind: "api", name, source, resolveDir: resolve(this.deps.workflowsDir) }, null);
      if (workflow.definition.name !== name) {
        const reason = `the module is named "${workflow.definition.name}" but was sent as "${name}": the name in the module must match`;
        throw new BifrostError("WORKFLOW_INVALID", `${file}: ${reason}`, {
          details: { file, line: definitionLine(source, "name"), reason, name: workflow.definition.name, sentAs: name },
          fix: `Send the module as "${workflow.definition.name}", or change its name to "${name}".`,
        });
      }
      const result = await this.commit(workflow);
      return { workflow: result.stored, created: result.created, changed: result.changed };
    } catch (err) {
      const error: ErrorData = err instanceof BifrostError ? err.toData() : { code: "INTERNAL", message: err instanceof Error ? err.message : String(err) };
      this.deps.events.emit("workflow:rejected", { file: null, name, error });
      this.deps.logger.info({ workflow: name, code: error.code, details: error.details }, `module sent as text rejected: ${error.message}`);
      throw err;
    }
  }

  /**
   * Unregisters a workflow that was sent as text (DELETE /api/workflows/:name). Its runs are kept,
   * and queued or running ones still execute their version. A workflow defined by a file is
   * refused: the next reload would register the file again.
   */
  async unregisterSource(name: string): Promise<RegisteredWorkflow> {
    return this.exclusive(async () => {
      const workflow = this.byName.get(name) ?? (await this.refresh(name));
      if (!workflow) throw new BifrostError("WORKFLOW_NOT_FOUND", `No workflow named "${capString(name, 64)}" is registered`, { details: { workflow: capString(name, 64) } });
      if (workflow.sourceKind === "file") {
        const file = workflow.file ?? "its file";
        throw new BifrostError("WORKFLOW_FILE_MANAGED", `workflow "${name}" is defined by the file ${file}: the engine would register it again at its next reload`, {
          details: { workflow: name, file: workflow.file },
          fix: `Delete or rename ${file} in the workflows directory: the engine unregisters the workflow when it next reloads the directory (at once when it watches it, else at its next start); its runs are kept.`,
        });
      }
      await this.remove(name);
      return workflow;
    });
  }

  async unregister(name: string): Promise<boolean> {
    return this.exclusive(() => this.remove(name));
  }

  private async remove(name: string): Promise<boolean> {
    const existed = this.byName.delete(name);
    const deleted = await this.deps.storage.workflows.delete(name);
    if (existed || deleted) this.deps.events.emit("workflow:removed", { name });
    // Runs still queued or running keep their version; the sweep drops the rest.
    this.versions.requestSweep(name);
    return existed || deleted;
  }

  /** Another process removed a workflow sent as text: this one stops serving it. */
  private forget(name: string): void {
    this.byName.delete(name);
    this.deps.events.emit("workflow:removed", { name });
  }

  /** Runs `fn` after every registration or removal before it has finished. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.mutations.then(fn);
    this.mutations = result.catch(() => undefined);
    return result;
  }

  /** Compiles a module and reads its definition; commit() decides whether it may take the name. */
  private async prepare(source: ModuleSource, file: string | null): Promise<RegisteredWorkflow> {
    const module = await compileModule(source);
    const displayFile = source.kind === "file" ? basename(source.file) : `${source.name}.ts`;
    const text = source.kind === "file" ? readFileSync(source.file, "utf8") : source.source;
    const definition = await this.readDefinition(module, displayFile, text);
    const now = this.deps.now();
    return { definition, version: module.version, sourceKind: source.kind, file, module, source: text, registeredAt: now, updatedAt: now };
  }

  private async readDefinition(module: CompiledModule, displayFile: string, text: string): Promise<WorkflowDefinition> {
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
        const first = result.problems[0];
        const line = definitionLine(text, first === undefined ? undefined : problemField(first));
        throw new BifrostError("WORKFLOW_INVALID", `${line === undefined ? displayFile : `${displayFile}:${line}`}: ${result.problems.join("; ")}`, {
          details: { file: displayFile, ...(line === undefined ? {} : { line }), reason: result.problems.join("; "), problems: result.problems },
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

  /**
   * Makes `workflow` its name's current version, unless another module holds the name. Its bundle is
   * stored first, so a run triggered with it always finds it.
   */
  private commit(workflow: RegisteredWorkflow): Promise<{ stored: RegisteredWorkflow; changed: boolean; created: boolean }> {
    return this.exclusive(async () => {
      const name = workflow.definition.name;
      const displayFile = workflow.file ? basename(workflow.file) : `${name}.ts`;
      // Another engine process may have registered the name since this one last looked.
      const current = this.byName.get(name) ?? (await this.refresh(name));
      const refused = nameConflict(workflow, current, displayFile);
      if (refused) throw refused;
      if (current && current.version === workflow.version && current.sourceKind === workflow.sourceKind) return { stored: current, changed: false, created: false };
      const stored = { ...workflow, registeredAt: current?.registeredAt ?? workflow.registeredAt };
      await this.versions.store(stored);
      await this.deps.storage.workflows.upsert(toRecord(stored));
      this.byName.set(name, stored);
      this.deps.events.emit("workflow:registered", { name, version: stored.version, sourceKind: stored.sourceKind, file: stored.file });
      this.deps.logger.info({ workflow: name, version: stored.version, file: stored.file }, "workflow registered");
      // The version it replaces goes unless a queued or running run still uses it.
      if (current) this.versions.requestSweep(name);
      return { stored, changed: true, created: current === undefined };
    });
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
      ...(d.schedule.orgs ? { orgs: d.schedule.orgs } : {}),
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
