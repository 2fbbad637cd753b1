/** The doctor's checklist for a person: one line per check, its fix below a failed one, a summary. Pure. */
import type { Diagnosis } from "../oauth/types.js";

/** Checks come from provider and network text: keep each on one line. */
const oneLine = (text: string) => text.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, " ").trim();

export function formatDiagnosis(d: Diagnosis, title: string): string {
  const lines = [oneLine(title)];
  for (const check of d.checks) {
    lines.push(`${check.ok ? "✔" : "✘"} ${oneLine(check.message)}`);
    if (!check.ok && check.fix) lines.push(`    fix: ${oneLine(check.fix)}`);
  }
  const failed = d.checks.filter((c) => !c.ok).length;
  const total = d.checks.length;
  lines.push(failed === 0 ? `All ${total} checks passed.` : `${failed} of ${total} checks failed.`);
  return `${lines.join("\n")}\n`;
}
