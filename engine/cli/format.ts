import type { LogRecord, RunRecord, StepRecord } from "../../storage/types.js";
import type { ErrorData } from "../../common/errors.js";
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

export function logLine(line: LogRecord): string {
  const time = new Date(line.ts).toISOString().slice(11, 23);
  const level = LEVEL_COLOR[line.level](line.level.toUpperCase().padEnd(5));
  const step = line.step ? dim(`[${line.step}] `) : "";
  const data = line.data === undefined ? "" : ` ${dim(JSON.stringify(line.data))}`;
  return `${dim(time)} ${level} ${step}${line.msg}${data}`;
}

export function errorText(error: ErrorData): string {
  const lines = [`${red(error.code)}: ${error.message}`];
  if (error.step) lines.push(`  in step: ${error.step}`);
  if (error.fix) lines.push(`  fix: ${error.fix}`);
  if (error.stack) lines.push(...error.stack.split("\n").slice(1).map((l) => dim(`  ${l.trim()}`)));
  return lines.join("\n");
}

export function table(rows: string[][]): string {
  // eslint-disable-next-line no-control-regex
  const visible = (s: string) => s.replace(/\x1b\[\d+m/g, "").length;
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => visible(r[i] ?? "")))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell + " ".repeat((widths[i] ?? 0) - visible(cell)))).join("  ")).join("\n");
}

export function runDuration(run: RunRecord): string {
  if (run.startedAt === null) return "-";
  return formatDuration((run.finishedAt ?? Date.now()) - run.startedAt);
}

export function runDetails(run: RunRecord, steps: StepRecord[]): string {
  const out = [
    `${run.workflow} ${dim(run.id)}`,
    `  status:    ${statusText(run.status)}`,
    `  trigger:   ${run.trigger}${run.org ? `  org: ${run.org}` : ""}  attempt: ${run.attempt}`,
    `  queued:    ${new Date(run.queuedAt).toISOString()}`,
    `  started:   ${run.startedAt ? new Date(run.startedAt).toISOString() : "-"}`,
    `  finished:  ${run.finishedAt ? new Date(run.finishedAt).toISOString() : "-"}  (${runDuration(run)})`,
    `  params:    ${JSON.stringify(run.params)}`,
  ];
  if (steps.length > 0) {
    out.push("  steps:");
    for (const s of steps) {
      const took = s.finishedAt === null ? "" : dim(` ${formatDuration(s.finishedAt - s.startedAt)}`);
      out.push(`    ${statusText(s.status).padEnd(10)} ${s.name}${took}${s.attempts > 1 ? dim(` (${s.attempts} attempts)`) : ""}`);
    }
  }
  if (run.result !== null) out.push(`  result:    ${JSON.stringify(run.result)}`);
  if (run.error) out.push(`  error:     ${errorText(run.error).split("\n").join("\n  ")}`);
  return out.join("\n");
}
