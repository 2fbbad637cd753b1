// What every maintenance job does around its query: open the database read-only on the worker's
// own connection (a reader waits here, on its own thread, never on the engine's), compute "now" on
// the engine's clock, post the findings back, close, and say "done". Plain JavaScript on
// better-sqlite3: a worker that loaded the TypeScript storage layer would cost a second of CPU each run.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

/** Runs `query(db, now, workerData)` once and posts what it returns. */
export function readOnce(query) {
  const now = Date.now() + workerData.clockOffsetMs;
  const db = new Database(workerData.file, { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    parentPort.postMessage(query(db, now, workerData));
  } finally {
    db.close();
  }
  parentPort.postMessage("done");
}
