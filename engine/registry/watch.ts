import { readdirSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../logger.js";

/** Subfolders watched below the workflows directory (local helpers); more are ignored. */
const MAX_WATCHED_DIRS = 200;

/**
 * Calls `reload` (debounced) when anything in the workflows directory or its subfolders changes.
 * Reloads never overlap: a change during a reload schedules one more.
 *
 * Each directory gets its own non-recursive watcher. A directory watcher sees every entry in it,
 * including a file replaced by rename (how editors and `git checkout` save); Node 20's recursive
 * watcher on Linux watches the file itself and goes deaf once the file is replaced. node_modules
 * and dot-folders are not watched: a changed dependency is taken at the next reload or start.
 */
export function watchDirectory(dir: string, reload: () => Promise<unknown>, logger: Logger, debounceMs = 150): () => void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let again = false;
  let closed = false;
  const watchers = new Map<string, FSWatcher>();

  const changed = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };
  const fire = () => {
    if (running) {
      again = true;
      return;
    }
    // Folders may have come or gone with the change.
    sync();
    running = reload()
      .catch((err: unknown) => logger.error({ err }, "reloading workflows failed"))
      .finally(() => {
        running = undefined;
        if (again && !closed) {
          again = false;
          fire();
        }
      });
  };
  const add = (path: string): void => {
    const watcher = watch(path, changed);
    watcher.on("error", (err) => {
      logger.warn({ err, dir: path }, "workflow directory watcher failed");
      watcher.close();
      watchers.delete(path);
    });
    watchers.set(path, watcher);
  };
  const sync = (): void => {
    if (closed) return;
    const wanted = new Set([dir, ...subfolders(dir)]);
    for (const [path, watcher] of watchers) {
      if (!wanted.has(path)) {
        watcher.close();
        watchers.delete(path);
      }
    }
    for (const path of wanted) {
      if (watchers.has(path)) continue;
      try {
        add(path);
      } catch {
        // Gone between listing and watching; the next change syncs again.
      }
    }
  };

  try {
    add(dir);
  } catch (err) {
    logger.warn({ err, dir }, "cannot watch the workflows directory; changes need a restart");
    return () => {};
  }
  sync();
  return () => {
    closed = true;
    clearTimeout(timer);
    for (const watcher of watchers.values()) watcher.close();
    watchers.clear();
  };
}

/** Subfolders of `root` (breadth first, without node_modules, dot-folders or symlinks). */
function subfolders(root: string): string[] {
  const found: string[] = [];
  const queue = [root];
  while (queue.length > 0 && found.length < MAX_WATCHED_DIRS) {
    const current = queue.shift()!;
    let entries;
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      const path = join(current, entry.name);
      found.push(path);
      queue.push(path);
      if (found.length >= MAX_WATCHED_DIRS) break;
    }
  }
  return found;
}
