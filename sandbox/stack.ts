import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import { capStack } from "./bounds.js";

/** The file name the bundle is compiled under inside the isolate; stack frames name it. */
export const BUNDLE_FILENAME = "bifrost-bundle.js";
const PRELUDE_FILENAME = "bifrost-prelude.js";
const BUNDLE_REF = `${BUNDLE_FILENAME}:`;

// Stacks come from workflow code: everything below is a single forward or backward scan (no
// regular expressions), on a stack already cut to a bounded length and number of frames.

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** End index of the run of digits starting at `i` (i itself when there is none). */
function digitsEnd(s: string, i: number): number {
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  return i;
}

/** Rewrites `bifrost-bundle.js:L:C` positions in one frame line through the source map. */
function mapLine(line: string, map: TraceMap): string {
  let out = "";
  let from = 0;
  for (let at = line.indexOf(BUNDLE_REF); at !== -1; at = line.indexOf(BUNDLE_REF, from)) {
    const lineStart = at + BUNDLE_REF.length;
    const lineEnd = digitsEnd(line, lineStart);
    const colStart = lineEnd + 1;
    const colEnd = lineEnd < line.length && line.charCodeAt(lineEnd) === 0x3a ? digitsEnd(line, colStart) : colStart;
    if (lineEnd === lineStart || colEnd === colStart) {
      out += line.slice(from, lineStart);
      from = lineStart;
      continue;
    }
    const pos = originalPositionFor(map, { line: Number(line.slice(lineStart, lineEnd)), column: Math.max(0, Number(line.slice(colStart, colEnd)) - 1) });
    out += line.slice(from, at);
    out += pos.source === null || pos.line === null ? line.slice(at, colEnd) : `${pos.source}:${pos.line}:${(pos.column ?? 0) + 1}`;
    from = colEnd;
  }
  return out + line.slice(from);
}

/**
 * Rewrites bundle positions in a stack to the user's file:line:column via the bundle's source
 * map and drops the engine's own frames. The stack is capped first.
 */
export function mapStack(stack: string, sourceMap: string): string {
  const lines = capStack(stack).split("\n");
  let map: TraceMap | undefined;
  try {
    map = new TraceMap(sourceMap);
  } catch {
    map = undefined;
  }
  const out: string[] = [];
  for (const line of lines) {
    if (line.includes(PRELUDE_FILENAME)) continue;
    out.push(map ? mapLine(line, map) : line);
  }
  return out.join("\n");
}

/**
 * Reads the `file:line:column` at the end of one frame line (`at fn (file:1:2)` or `at file:1:2`),
 * scanning backwards once.
 */
export function parseFrameLocation(frame: string): { file: string; line: number; column: number } | undefined {
  let end = frame.length;
  while (end > 0 && frame.charCodeAt(end - 1) <= 0x20) end--;
  if (end > 0 && frame.charCodeAt(end - 1) === 0x29) end--; // ")"
  let i = end;
  while (i > 0 && isDigit(frame.charCodeAt(i - 1))) i--;
  const column = frame.slice(i, end);
  if (column.length === 0 || i === 0 || frame.charCodeAt(i - 1) !== 0x3a) return undefined;
  end = i - 1;
  i = end;
  while (i > 0 && isDigit(frame.charCodeAt(i - 1))) i--;
  const line = frame.slice(i, end);
  if (line.length === 0 || i === 0 || frame.charCodeAt(i - 1) !== 0x3a) return undefined;
  end = i - 1;
  i = end;
  for (; i > 0; i--) {
    const c = frame.charCodeAt(i - 1);
    if (c <= 0x20 || c === 0x28 || c === 0x29) break; // whitespace, "(", ")"
  }
  const file = frame.slice(i, end);
  if (file.length === 0) return undefined;
  return { file, line: Number(line), column: Number(column) };
}

/** The first user-code position in a mapped stack, for reporting "file:line". */
export function firstUserFrame(stack: string): { file: string; line: number; column: number } | undefined {
  const lines = capStack(stack).split("\n");
  for (let n = 1; n < lines.length; n++) {
    const loc = parseFrameLocation(lines[n]!);
    if (loc && !loc.file.includes(BUNDLE_FILENAME) && !loc.file.includes("bifrost-module.js")) return loc;
  }
  return undefined;
}
