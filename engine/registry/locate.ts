/**
 * Lines in a module's text for problems found in its definition (which is read by running the
 * module, so it carries no positions). Only the engine's own field names are searched for, with
 * indexOf: the text is the user's, and nothing of it reaches a regex.
 */

const DEFINITION_FIELDS = new Set(["name", "description", "params", "schedule", "timeout", "chunkTimeout", "retry", "webhook"]);

/** 1-based line of `offset` in `text`. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line += 1;
  return line;
}

/** The definition field a problem of validateDefinition is about ("schedule.cron: …" → "schedule"). */
export function problemField(problem: string): string | undefined {
  const end = problem.search(/[.:]/);
  const field = end > 0 ? problem.slice(0, end) : undefined;
  return field !== undefined && DEFINITION_FIELDS.has(field) ? field : undefined;
}

/**
 * Where a definition problem points: the line of `field:` (bare or quoted) after the first
 * `workflow(`, else the line of `workflow(` itself; undefined when the text has neither.
 */
export function definitionLine(source: string, field?: string): number | undefined {
  const call = source.indexOf("workflow(");
  const from = Math.max(0, call);
  if (field !== undefined && DEFINITION_FIELDS.has(field)) {
    const hits = [`${field}:`, `"${field}":`, `'${field}':`].map((needle) => wordAt(source, needle, from)).filter((at) => at >= 0);
    if (hits.length > 0) return lineAt(source, Math.min(...hits));
  }
  return call >= 0 ? lineAt(source, call) : undefined;
}

/** First `needle` at or after `from` that is not the tail of a longer word (`displayname:`). */
function wordAt(source: string, needle: string, from: number): number {
  for (let at = source.indexOf(needle, from); at >= 0; at = source.indexOf(needle, at + 1)) {
    if (at === 0 || !isWordChar(source.charCodeAt(at - 1))) return at;
  }
  return -1;
}

function isWordChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code === 36;
}
