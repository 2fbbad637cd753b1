import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "../logger.js";

/**
 * Calls `reload` (debounced) when anything in the workflows directory changes. Reloads never
 * overlap: a change during a reload schedules one more.
 */
export function watchDirectory(dir: string, reload: () => Promise<unknown>, logger: Logger, debounceMs = 150): () => void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let again = false;
  const fire = () => {
    if (running) {
      again = true;
      return;
    }
    running = reload()
      .catch((err: unknown) => logger.error({ err }, "reloading workflows failed"))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          fire();
        }
      });
  };
  let watcher: FSWatcher;
  try {
    watcher = watch(dir, { recursive: true }, () => {
      clearTimeout(timer);
      timer = setTimeout(fire, debounceMs);
    });
  } catch (err) {
    logger.warn({ err, dir }, "cannot watch the workflows directory; changes need a restart");
    return () => {};
  }
  watcher.on("error", (err) => logger.warn({ err, dir }, "workflow directory watcher failed"));
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
