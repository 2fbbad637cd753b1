import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";

/** The file name the bundle is compiled under inside the isolate; stack frames name it. */
export const BUNDLE_FILENAME = "bifrost-bundle.js";
const FRAME = new RegExp(`${BUNDLE_FILENAME.replace(".", "\\.")}:(\\d+):(\\d+)`, "g");

/** Rewrites bundle positions in a stack to the user's file:line:column via the bundle's source map. */
export function mapStack(stack: string, sourceMap: string): string {
  let map: TraceMap;
  try {
    map = new TraceMap(sourceMap);
  } catch {
    return stack;
  }
  return stack
    .replace(FRAME, (whole, line: string, column: string) => {
      const pos = originalPositionFor(map, { line: Number(line), column: Math.max(0, Number(column) - 1) });
      if (pos.source === null || pos.line === null) return whole;
      return `${pos.source}:${pos.line}:${(pos.column ?? 0) + 1}`;
    })
    .split("\n")
    .filter((frame) => !frame.includes("bifrost-prelude.js"))
    .join("\n");
}

/** The first user-code position in a mapped stack, for reporting "file:line". */
export function firstUserFrame(stack: string): { file: string; line: number; column: number } | undefined {
  for (const line of stack.split("\n").slice(1)) {
    const m = /\(?([^\s()]+):(\d+):(\d+)\)?\s*$/.exec(line.trim());
    if (m && !m[1]!.includes(BUNDLE_FILENAME) && !m[1]!.includes("bifrost-module.js")) {
      return { file: m[1]!, line: Number(m[2]), column: Number(m[3]) };
    }
  }
  return undefined;
}
