import type { Storage, WorkflowVersionRecord } from "../../storage/types.js";
import type { Logger } from "../logger.js";
import { validateDefinition, type WorkflowDefinition } from "./definition.js";

/** What a run executes: a definition and the bundle it was read from (RegisteredWorkflow's shape). */
export interface VersionedWorkflow {
  definition: WorkflowDefinition;
  version: string;
  sourceKind: "file" | "api";
  file: string | null;
  module: { code: string; sourceMap: string; version: string };
  source: string;
  registeredAt: number;
  updatedAt: number;
}

/** Old versions kept in memory for the runs still executing them; a version never changes. */
const CACHE_SIZE = 16;
/** Versions one sweep deletes at most; the sweep goes on in the next round when it hit the bound. */
export const SWEEP_LIMIT = 100;

/**
 * The versions runs execute. Every registered version is stored (workflow_versions) with its bundle
 * while it is current or a queued or running run was triggered with it, so a run executes its own
 * version even after a newer one was registered or the workflow was deleted. Sweeps drop the rest:
 * after a registration or a removal, when a run of an old version finishes, and at start.
 */
export class WorkflowVersions {
  private readonly cache = new Map<string, VersionedWorkflow>();
  /** Workflows to sweep; null stands for all of them. */
  private readonly pending = new Set<string | null>();
  private sweeping: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly storage: Storage,
    private readonly logger: Logger,
    private readonly metaOf: (definition: WorkflowDefinition) => Record<string, unknown>,
  ) {}

  /** Stores a version (once): at registration, and again for each run created with it. */
  async store(workflow: VersionedWorkflow): Promise<void> {
    await this.storage.workflowVersions.put(this.toRecord(workflow));
  }

  /** A version read earlier, without asking the database. */
  cached(name: string, version: string): VersionedWorkflow | undefined {
    const key = cacheKey(name, version);
    const hit = this.cache.get(key);
    if (hit) {
      // Most recently used last: the first entry is the one to evict.
      this.cache.delete(key);
      this.cache.set(key, hit);
    }
    return hit;
  }

  /** Reads a stored version; undefined when it is not stored (or no longer valid). */
  async load(name: string, version: string): Promise<VersionedWorkflow | undefined> {
    const record = await this.storage.workflowVersions.get(name, version);
    if (!record) return undefined;
    const result = validateDefinition(record.meta);
    if (!result.ok) {
      this.logger.error({ workflow: name, version, problems: result.problems }, "a stored workflow version no longer validates; runs of it cannot execute");
      return undefined;
    }
    const workflow = fromRecord(record, result.definition);
    this.cache.set(cacheKey(name, version), workflow);
    while (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return workflow;
  }

  /** Asks for a sweep of one workflow's versions (or of all, with null); sweeps never overlap. */
  requestSweep(name: string | null): void {
    if (this.closed) return;
    this.pending.add(name);
    this.sweeping ??= this.drain();
  }

  /** Resolves once no sweep is running or asked for. */
  async settled(): Promise<void> {
    while (this.sweeping) await this.sweeping;
  }

  /** No more sweeps; resolves once the one running (if any) is over, so storage may close. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    await this.settled();
  }

  private async drain(): Promise<void> {
    try {
      for (const name of this.pending) {
        this.pending.delete(name);
        if (this.closed) break;
        try {
          const deleted = await this.storage.workflowVersions.sweep({ ...(name === null ? {} : { name }), limit: SWEEP_LIMIT });
          if (deleted > 0) this.logger.debug({ workflow: name, deleted }, "dropped workflow versions no run needs");
          if (deleted === SWEEP_LIMIT) this.pending.add(name);
        } catch (err) {
          // Nothing is lost: the versions stay until a later sweep (the next registration or start).
          this.logger.warn({ err, workflow: name }, "sweeping old workflow versions failed; they are kept until the next sweep");
        }
      }
    } finally {
      this.sweeping = undefined;
    }
  }

  private toRecord(w: VersionedWorkflow): WorkflowVersionRecord {
    return {
      name: w.definition.name,
      version: w.version,
      code: w.module.code,
      sourceMap: w.module.sourceMap,
      meta: this.metaOf(w.definition),
      createdAt: w.updatedAt,
      sourceKind: w.sourceKind,
      file: w.file,
      source: w.source,
    };
  }
}

const cacheKey = (name: string, version: string) => `${name}\u0000${version}`;

function fromRecord(record: WorkflowVersionRecord, definition: WorkflowDefinition): VersionedWorkflow {
  return {
    definition,
    version: record.version,
    sourceKind: record.sourceKind,
    file: record.file,
    module: { code: record.code, sourceMap: record.sourceMap, version: record.version },
    source: record.source,
    registeredAt: record.createdAt,
    updatedAt: record.createdAt,
  };
}
