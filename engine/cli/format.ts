import type { LogLevel } from "../../storage/types.js";
import { ERROR_CODES, hintFor, type ErrorCode, type ErrorData } from "../../common/errors.js";
import { formatDuration } from "../duration.js";

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number) => (s: string) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s);
export const dim = paint(2);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);
export const cyan = paint(36);

const LEVEL_COLOR = { debug: dim, info: cyan, warn: yellow, error: red } as const;

export function statusText(status: string): string {
  if (status === "succeeded") return green(status);
  if (status === "failed" || status === "timed_out" || status === "cancelled") return red(status);
  return yellow(status);
}

/** A log line as stored (epoch ms) or as the API sends it (ISO time). */
export interface PrintableLogLine {
  ts: number | string;
  level: LogLevel;
  msg: string;
  data?: unknown;
  step?: string;
}

/** The API's run view (GET /api/runs/:id): what `runs show` prints, embedded or from a server. */
export interface PrintableRun {
  id: string;
  workflow: string;
  org: string | null;
  trigger: string;
  status: string;
  params: unknown;
  result: unknown;
  error: ErrorData | null;
  attempt: number;
  queuedAt: string | null;
  /** When a queued run is due (absent from servers of older releases). */
  runAt?: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  retryOf?: string | null;
  cancelRequestedAt?: string | null;
  /** `done/total` of each ctx.chunks call (the run record's view; absent in run lists). */
  chunks?: { name: string; done: number; total: number }[];
}

export interface PrintableStep {
  name: string;
  status: string;
  attempts: number;
  durationMs: number | null;
}

export function logLine(line: PrintableLogLine): string {
  const time = new Date(line.ts).toISOString().slice(11, 23);
  const level = LEVEL_COLOR[line.level](line.level.toUpperCase().padEnd(5));
  const step = line.step ? dim(`[${line.step}] `) : "";
  const data = line.data === undefined ? "" : ` ${dim(JSON.stringify(line.data))}`;
  return `${dim(time)} ${level} ${step}${line.msg}${data}`;
}

/**
 * A run's stored fix is the registry's, worded for HTTP, unless the failure gave its own (an OAuth
 * category's fix): in the terminal the code's CLI wording replaces the HTTP one.
 */
function fixInTerminal(error: ErrorData): string | undefined {
  if (!error.fix || !Object.hasOwn(ERROR_CODES, error.code)) return error.fix;
  const code = error.code as ErrorCode;
  return error.fix === ERROR_CODES[code].hint ? hintFor(code, "cli") : error.fix;
}

export function errorText(error: ErrorData): string {
  const lines = [`${red(error.code)}: ${error.message}`];
  if (error.step) lines.push(`  in step: ${error.step}`);
  const fix = fixInTerminal(error);
  if (fix) lines.push(`  fix: ${fix}`);
  if (error.stack) lines.push(...error.stack.split("\n").slice(1).map((l) => dim(`  ${l.trim()}`)));
  return lines.join("\n");
}

export function table(rows: string[][]): string {
  // eslint-disable-next-line no-control-regex
  const visible = (s: string) => s.replace(/\x1b\[\d+m/g, "").length;
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => visible(r[i] ?? "")))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell + " ".repeat((widths[i] ?? 0) - visible(cell)))).join("  ")).join("\n");
}

export function runDuration(run: Pick<PrintableRun, "startedAt" | "durationMs">): string {
  if (run.startedAt === null) return "-";
  return formatDuration(run.durationMs ?? Date.now() - Date.parse(run.startedAt));
}

export function runDetails(run: PrintableRun, steps: PrintableStep[]): string {
  const out = [
    `${run.workflow} ${dim(run.id)}`,
    `  status:    ${statusText(run.status)}${run.cancelRequestedAt && run.status === "running" ? yellow(`  (cancel requested ${run.cancelRequestedAt})`) : ""}`,
    `  trigger:   ${run.trigger}${run.org ? `  org: ${run.org}` : ""}  attempt: ${run.attempt}${run.retryOf ? `  retry of: ${run.retryOf}` : ""}`,
    `  queued:    ${run.queuedAt ?? "-"}${run.status === "queued" && run.runAt && Date.parse(run.runAt) > Date.now() ? dim(`  (waits until ${run.runAt}: a sleep or a retry's pause)`) : ""}`,
    `  started:   ${run.startedAt ?? "-"}`,
    `  finished:  ${run.finishedAt ?? "-"}  (${runDuration(run)})`,
    `  params:    ${JSON.stringify(run.params)}`,
  ];
  for (const c of run.chunks ?? []) out.push(`  chunks ${c.name}: ${c.done}/${c.total}`);
  if (steps.length > 0) {
    out.push("  steps:");
    for (const s of steps) {
      const took = s.durationMs === null ? "" : dim(` ${formatDuration(s.durationMs)}`);
      out.push(`    ${statusText(s.status).padEnd(10)} ${s.name}${took}${s.attempts > 1 ? dim(` (${s.attempts} attempts)`) : ""}`);
    }
  }
  if (run.result !== null) out.push(`  result:    ${JSON.stringify(run.result)}`);
  if (run.error) out.push(`  error:     ${errorText(run.error).split("\n").join("\n  ")}`);
  return out.join("\n");
}
