import type BetterSqlite3 from "better-sqlite3";
import {
  CompiledQuery,
  SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from "kysely";
import { BifrostError } from "../common/errors.js";

/**
 * A kysely driver for better-sqlite3 that never blocks the event loop on a lock.
 *
 * better-sqlite3 is synchronous: with `busy_timeout` a statement that meets another process's
 * write lock parks the whole engine (HTTP, heartbeats, every run) until the lock goes. Here both
 * connections run with `busy_timeout = 0`; a busy statement is retried asynchronously with
 * backoff until `busyBudgetMs`, then fails as STORAGE_UNAVAILABLE, which callers treat as "the
 * database is unavailable", never as the workflow's fault.
 *
 * Two connections: reads outside a transaction use `reader` (WAL lets them proceed while another
 * process writes), writes and transactions are serialized on `writer`. Transactions begin
 * IMMEDIATE, so a statement inside one can never meet a lock: only BEGIN waits.
 */
export interface SqliteDriverOptions {
  file: string;
  writer: BetterSqlite3.Database;
  reader: BetterSqlite3.Database;
  /** How long one statement keeps retrying while the database is locked. */
  busyBudgetMs: number;
  /** Throws when the database file is no longer the one that was opened (deleted, replaced). */
  checkFile: () => void;
}

const BUSY_CODES = new Set(["SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED", "SQLITE_LOCKED_SHAREDCACHE"]);
const STATEMENT_CACHE_SIZE = 256;

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_") ? code : undefined;
}

export function isBusy(err: unknown): boolean {
  const code = sqliteCode(err);
  return code !== undefined && BUSY_CODES.has(code);
}

/**
 * Translates a failure of the database itself into STORAGE_UNAVAILABLE with what is wrong with
 * the file; anything else (a constraint, a bug in a query) is returned unchanged.
 */
export function storageFailure(err: unknown, file: string): unknown {
  if (err instanceof BifrostError) return err;
  const code = sqliteCode(err);
  if (code === undefined || code.startsWith("SQLITE_CONSTRAINT") || code === "SQLITE_ERROR" || code === "SQLITE_RANGE" || code === "SQLITE_MISMATCH") return err;
  const reason = (err as Error).message;
  if (BUSY_CODES.has(code)) {
    return new BifrostError("STORAGE_UNAVAILABLE", `the database ${file} is locked by another process (${reason})`, {
      cause: err,
      fix: "Another process holds a write lock on the database file: let it finish or stop it; the engine retries on its own.",
    });
  }
  if (code.startsWith("SQLITE_READONLY")) {
    return new BifrostError("STORAGE_UNAVAILABLE", `the database ${file} cannot be written (${reason})`, {
      cause: err,
      fix: "Make the data directory and the database file writable by the engine's user (BIFROST_DATA_DIR).",
    });
  }
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) {
    return new BifrostError("STORAGE_UNAVAILABLE", `${file} is not a usable SQLite database (${reason})`, {
      cause: err,
      fix: "Point BIFROST_DATA_DIR at a directory of its own, or move the damaged file away and restore it from a backup.",
    });
  }
  if (code === "SQLITE_FULL") {
    return new BifrostError("STORAGE_UNAVAILABLE", `the disk holding ${file} is full (${reason})`, { cause: err, fix: "Free disk space on the volume of the data directory." });
  }
  return new BifrostError("STORAGE_UNAVAILABLE", `the database ${file} failed: ${reason} (${code})`, {
    cause: err,
    fix: "Check the data directory (BIFROST_DATA_DIR): that it exists, is writable and its disk is healthy.",
  });
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class StatementCache {
  private readonly cache = new Map<string, BetterSqlite3.Statement>();
  constructor(private readonly db: BetterSqlite3.Database) {}

  /** Kysely prepares every query anew; preparing dominated the per-run cost, so keep them (LRU). */
  get(sql: string): BetterSqlite3.Statement {
    let statement = this.cache.get(sql);
    if (statement) this.cache.delete(sql);
    else {
      statement = this.db.prepare(sql);
      if (this.cache.size >= STATEMENT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(sql, statement);
    return statement;
  }
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  /** Resolves with the unlock function once every earlier holder has unlocked. */
  lock(): Promise<() => void> {
    let unlock!: () => void;
    const next = new Promise<void>((resolve) => (unlock = resolve));
    const ready = this.tail.then(() => unlock);
    this.tail = this.tail.then(() => next);
    return ready;
  }
}

function execute(statements: StatementCache, query: CompiledQuery): QueryResult<unknown> {
  const stmt = statements.get(query.sql);
  const parameters = query.parameters as unknown[];
  if (stmt.reader) return { rows: stmt.all(parameters) };
  const { changes, lastInsertRowid } = stmt.run(parameters);
  return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
}

export class BetterSqliteDriver implements Driver {
  private readonly writeLock = new Mutex();
  private readonly writer: StatementCache;
  private readonly reader: StatementCache;

  constructor(private readonly options: SqliteDriverOptions) {
    this.writer = new StatementCache(options.writer);
    this.reader = new StatementCache(options.reader);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new Session(this);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as Session).begin();
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as Session).end("commit");
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as Session).end("rollback");
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as Session).release();
  }

  async destroy(): Promise<void> {
    this.options.reader.close();
    this.options.writer.close();
  }

  /** Runs `fn` until it stops meeting a lock, waiting between tries without blocking. */
  async retryBusy<T>(fn: () => T, budgetMs = this.options.busyBudgetMs): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err) || Date.now() - started >= budgetMs) throw storageFailure(err, this.options.file);
      }
      await delay(Math.min(2 ** attempt, 50));
    }
  }

  lockWriter(): Promise<() => void> {
    return this.writeLock.lock();
  }

  read(query: CompiledQuery): Promise<QueryResult<unknown>> {
    return this.retryBusy(() => execute(this.reader, query));
  }

  write(query: CompiledQuery): QueryResult<unknown> {
    return execute(this.writer, query);
  }

  get file(): string {
    return this.options.file;
  }

  checkFile(): void {
    this.options.checkFile();
  }

  /**
   * Whether a write could start now: takes and drops the write lock on the reader connection, so
   * a lock held elsewhere (or a deleted file) shows without waiting behind this engine's writes.
   */
  async probeWrite(budgetMs: number): Promise<void> {
    this.checkFile();
    await this.retryBusy(() => this.options.reader.prepare("select 1").get());
    await this.retryBusy(() => this.options.reader.exec("BEGIN IMMEDIATE"), budgetMs);
    this.options.reader.exec("ROLLBACK");
  }
}

/** One kysely connection: a transaction holds the writer for its whole length. */
class Session implements DatabaseConnection {
  private unlock: (() => void) | undefined;

  constructor(private readonly driver: BetterSqliteDriver) {}

  async begin(): Promise<void> {
    this.unlock = await this.driver.lockWriter();
    try {
      this.driver.checkFile();
      await this.driver.retryBusy(() => this.driver.write(CompiledQuery.raw("begin immediate")));
    } catch (err) {
      this.release();
      throw err;
    }
  }

  async end(command: "commit" | "rollback"): Promise<void> {
    try {
      this.driver.write(CompiledQuery.raw(command));
    } catch (err) {
      throw storageFailure(err, this.driver.file);
    } finally {
      this.release();
    }
  }

  release(): void {
    const unlock = this.unlock;
    this.unlock = undefined;
    unlock?.();
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.unlock) {
      // Inside an IMMEDIATE transaction this process holds the write lock: no retry is needed.
      try {
        return this.driver.write(query) as QueryResult<R>;
      } catch (err) {
        throw storageFailure(err, this.driver.file);
      }
    }
    if (SelectQueryNode.is(query.query)) return (await this.driver.read(query)) as QueryResult<R>;
    const unlock = await this.driver.lockWriter();
    try {
      this.driver.checkFile();
      return (await this.driver.retryBusy(() => this.driver.write(query))) as QueryResult<R>;
    } finally {
      unlock();
    }
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not used by the engine");
  }
}

export function betterSqliteDialect(driver: BetterSqliteDriver): Dialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => driver,
    createIntrospector: (db: Kysely<unknown>) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
}
