import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BifrostError, ERROR_CODES, hintFor, type ErrorCode, type ErrorCodeInfo } from "../common/errors.js";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

/** Codes only one surface can produce (a new code must be placed here or be true on both). */
const HTTP_ONLY: ErrorCode[] = ["ROUTE_NOT_FOUND", "UNSUPPORTED_MEDIA_TYPE", "MALFORMED_REQUEST", "HEADERS_TOO_LARGE", "REQUEST_TIMEOUT", "METHOD_NOT_ALLOWED", "WEBHOOK_SIGNATURE_INVALID"].filter((c): c is ErrorCode => c in ERROR_CODES);
const CLI_ONLY: ErrorCode[] = ["CLI_USAGE"];
/** Codes stored in run records: their fix is shown by the API and by `bifrost runs show` alike. */
const RUN_RECORD_CODES: ErrorCode[] = CODES.filter((c) => ERROR_CODES[c].status === 500 && !["CONFIG_INVALID", "INTERNAL"].includes(c));

const HTTP_WORDS = /\/api\/|Content-Type|\b[Rr]equests?\b|\b[Bb]ody\b|\b[Hh]eaders?\b|\b(GET|POST|PUT|DELETE) /;
const CLI_WORDS = /(^|\s)--[a-z]|`bifrost\b|\bterminal\b/;

const shownOn = (surface: "http" | "cli") => CODES.filter((c) => !(surface === "cli" ? HTTP_ONLY : CLI_ONLY).includes(c));

describe("the error registry's hints are true where they are shown", () => {
  it("says nothing about HTTP requests in the terminal", () => {
    const wrong = shownOn("cli").filter((c) => HTTP_WORDS.test(hintFor(c, "cli")));
    expect(wrong).toEqual([]);
  });

  it("says nothing about CLI options over HTTP", () => {
    const wrong = shownOn("http").filter((c) => CLI_WORDS.test(hintFor(c, "http")));
    expect(wrong).toEqual([]);
  });

  it("gives run-record codes one fix that is true on both surfaces", () => {
    for (const code of RUN_RECORD_CODES) {
      const info: ErrorCodeInfo = ERROR_CODES[code];
      expect({ code, cli: info.cli }).toEqual({ code, cli: undefined });
      expect({ code, http: HTTP_WORDS.test(info.hint), cli: CLI_WORDS.test(info.hint) }).toEqual({ code, http: false, cli: false });
    }
  });

  it("points only at README sections, settings and commands that exist", () => {
    const headings = new Set([...README.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.trim()));
    const cliBlock = /## CLI\n+```\n([\s\S]*?)```/.exec(README)?.[1] ?? "";
    for (const code of CODES) {
      for (const surface of ["http", "cli"] as const) {
        const hint = hintFor(code, surface);
        expect({ code, hint, reference: /module reference|DESIGN/.test(hint) }).toEqual({ code, hint, reference: false });
        for (const [, section] of hint.matchAll(/README's "([^"]+)"/g)) expect({ code, section, exists: headings.has(section!) }).toEqual({ code, section, exists: true });
        if (/HTTP API table/.test(hint)) expect(headings.has("HTTP API")).toBe(true);
        if (/configuration table/.test(hint)) expect(headings.has("Configuration")).toBe(true);
        for (const [setting] of hint.matchAll(/\b(BIFROST_[A-Z_]+|LOG_LEVEL)\b/g)) expect({ code, setting, documented: README.includes(`\`${setting}\``) }).toEqual({ code, setting, documented: true });
        for (const [, command] of hint.matchAll(/`bifrost ([a-z]+(?: [a-z]+)?)/g)) expect({ code, command, exists: cliBlock.includes(`bifrost ${command}`) }).toEqual({ code, command, exists: true });
      }
    }
  });

  it("prefers the thrower's own fix on every surface, and the registry's per surface otherwise", () => {
    const own = new BifrostError("WORKFLOW_NOT_FOUND", "gone", { fix: "Fix the module at the reported line." });
    expect([own.fixFor("cli"), own.fixFor("http"), own.fix]).toEqual(Array(3).fill("Fix the module at the reported line."));
    const plain = new BifrostError("INVALID_JSON", "bad");
    expect(plain.fixFor("cli")).toBe(hintFor("INVALID_JSON", "cli"));
    expect(plain.fixFor("http")).toBe(ERROR_CODES.INVALID_JSON.hint);
    expect(plain.fixFor("cli")).not.toBe(plain.fixFor("http"));
  });
});
