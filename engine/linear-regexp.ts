import type { CodeOptions } from "ajv";
import { RE2JS } from "re2js";
import { capString } from "../common/json-bounds.js";

/**
 * The regular-expression engine for JSON Schemas written by workflow authors (`pattern`,
 * `patternProperties`). A schema comes from guest code, so its patterns are hostile input: V8's
 * backtracking engine takes exponential time on `^(a+)+$`, and every trigger request would pay it.
 * RE2 (re2js, a pure-JS port) matches in time linear in the input, whatever the pattern.
 *
 * RE2 has no lookaround and no backreferences. `RE2JS.translateRegExp` would quietly turn `\k<n>`
 * into the literal `k<n>`, so those constructs are refused here, before translation, rather than
 * matched with another meaning.
 */

/** Longest `pattern` accepted: compiling is linear in the pattern, but a schema has no need for more. */
export const MAX_PATTERN_LENGTH = 1000;

export class UnsupportedPatternError extends Error {
  readonly pattern: string;
  constructor(pattern: string, reason: string) {
    super(`pattern ${JSON.stringify(capString(pattern, 120))} ${reason}`);
    this.name = "UnsupportedPatternError";
    this.pattern = pattern;
  }
}

/** The first construct RE2 cannot match (or would match differently), found in one linear scan. */
function unsupportedConstruct(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      const next = pattern[i + 1] ?? "";
      if (!inClass && next >= "1" && next <= "9") return `a backreference (\\${next})`;
      if (!inClass && next === "k") return "a named backreference (\\k<name>)";
      i++;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      continue;
    }
    if (c === "[") inClass = true;
    else if (c === "(" && pattern[i + 1] === "?") {
      const after = pattern.slice(i + 2, i + 4);
      if (after.startsWith("=") || after.startsWith("!")) return "a lookahead ((?= or (?!)";
      if (after === "<=" || after === "<!") return "a lookbehind ((?<= or (?<!)";
    }
  }
  return undefined;
}

function compileLinear(pattern: string, flags: string): { test: (input: string) => boolean } {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new UnsupportedPatternError(pattern, `is ${pattern.length} characters long; a pattern may have at most ${MAX_PATTERN_LENGTH}`);
  }
  // JSON Schema patterns are ECMAScript regular expressions: refuse what JavaScript would refuse.
  try {
    new RegExp(pattern, flags);
  } catch (err) {
    throw new UnsupportedPatternError(pattern, `is not a valid regular expression: ${(err as Error).message}`);
  }
  const construct = unsupportedConstruct(pattern);
  if (construct) {
    throw new UnsupportedPatternError(pattern, `uses ${construct}; params patterns are matched in linear time (RE2 syntax), which has no lookaround or backreferences`);
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (err) {
    throw new UnsupportedPatternError(pattern, `cannot be matched in linear time (RE2 syntax): ${capString((err as Error).message, 200)}`);
  }
  return { test: (input: string) => re.test(input) };
}

/** ajv's `code.regExp` option. `code` only names the function in standalone code, which is not used. */
export const linearRegExp: NonNullable<CodeOptions["regExp"]> = Object.assign(compileLinear, { code: "linearRegExp" });
