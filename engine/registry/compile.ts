import { createHash } from "node:crypto";
import { builtinModules } from "node:module";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type BuildFailure, type Message, type Plugin } from "esbuild";
import { BifrostError } from "../../common/errors.js";
import { capString } from "../../common/json-bounds.js";

const BIFROST_MODULE = fileURLToPath(new URL("../../sandbox/guest/bifrost-module.js", import.meta.url));
const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

export interface CompiledModule {
  code: string;
  sourceMap: string;
  /** sha256 of the bundle: the workflow's version. */
  version: string;
}

export type ModuleSource = { kind: "file"; file: string } | { kind: "api"; name: string; source: string; resolveDir: string };

/** Where a compile or validation problem is, in the user's terms. */
export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
}

/**
 * Why a module sent as text may not import `path`, if it may not. Its text comes from an API
 * client, not from the engine's disk: a relative or absolute path would bundle any file the engine
 * can read (a JSON or text file comes back as data, anything else is quoted in the compile error),
 * so it may import "bifrost" and installed npm packages only. The packages' own imports are theirs.
 */
function textModuleImportProblem(path: string): string | undefined {
  const segments = path.split(/[/\\]/);
  if (path.startsWith(".") || path.startsWith("/") || path.includes("\\") || /^[A-Za-z]:/.test(path) || /^file:/i.test(path) || segments.includes("..")) {
    return `"${capString(path, 200)}" is a file path: a module sent as text may import only "bifrost" and npm packages installed for the engine; put helpers in the module itself, or install them as a package`;
  }
  return undefined;
}

function sandboxImports(input: ModuleSource): Plugin {
  const textModule = input.kind === "api" ? resolve(input.resolveDir, `${input.name}.ts`) : undefined;
  return {
    name: "bifrost-sandbox-imports",
    setup(b) {
      b.onResolve({ filter: /^bifrost$/ }, () => ({ path: BIFROST_MODULE }));
      b.onResolve({ filter: /.*/ }, (args) => {
        if (NODE_BUILTINS.has(args.path)) {
          return {
            errors: [
              {
                text: `Node built-in "${args.path}" is not available in the Bifrost sandbox: workflows reach the outside world only through ctx`,
              },
            ],
          };
        }
        const problem = textModule !== undefined && args.importer === textModule ? textModuleImportProblem(args.path) : undefined;
        return problem === undefined ? undefined : { errors: [{ text: problem }] };
      });
    },
  };
}

function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}

/**
 * The user's path for a file esbuild names: esbuild's paths are relative to its working directory
 * (the module's folder), not to this process's, and a module sent as text keeps its own name.
 */
function sourcePath(input: ModuleSource, baseDir: string, file: string): string {
  if (input.kind === "api" && file === `${input.name}.ts`) return file;
  return displayPath(resolve(baseDir, file));
}

function compileError(failure: BuildFailure, input: ModuleSource, baseDir: string, fallbackFile: string): BifrostError {
  const first: Message | undefined = failure.errors[0];
  const loc = first?.location;
  const file = loc ? sourcePath(input, baseDir, loc.file) : fallbackFile;
  const where = loc ? `${file}:${loc.line}:${loc.column + 1}` : file;
  const reason = first?.text ?? failure.message;
  return new BifrostError("WORKFLOW_COMPILE_ERROR", `${where}: ${reason}`, {
    details: {
      file,
      line: loc?.line,
      column: loc ? loc.column + 1 : undefined,
      reason,
      lineText: loc?.lineText,
      errors: failure.errors.slice(1, 5).map((e) => ({ text: e.text, file: e.location ? sourcePath(input, baseDir, e.location.file) : undefined, line: e.location?.line })),
    },
  });
}

/**
 * Bundles a workflow module (TypeScript or JavaScript, with "bifrost" and pure npm imports) into one
 * CommonJS-style script for the sandbox, with a source map whose sources are the user's paths.
 */
export async function compileModule(input: ModuleSource): Promise<CompiledModule> {
  const fallbackFile = input.kind === "file" ? displayPath(input.file) : `${input.name}.ts`;
  const baseDir = input.kind === "file" ? dirname(input.file) : input.resolveDir;
  try {
    const result = await build({
      ...(input.kind === "file"
        ? { entryPoints: [input.file] }
        : { stdin: { contents: input.source, loader: "ts", sourcefile: `${input.name}.ts`, resolveDir: input.resolveDir } }),
      bundle: true,
      write: false,
      format: "cjs",
      platform: "neutral",
      mainFields: ["module", "main"],
      conditions: ["import", "default"],
      target: "es2022",
      sourcemap: "external",
      sourcesContent: false,
      outfile: resolve(baseDir, "bifrost-out.js"),
      absWorkingDir: baseDir,
      logLevel: "silent",
      plugins: [sandboxImports(input)],
    });
    const js = result.outputFiles.find((f) => f.path.endsWith(".js"));
    const map = result.outputFiles.find((f) => f.path.endsWith(".map"));
    if (!js || !map) throw new Error("esbuild produced no output");
    const parsedMap = JSON.parse(map.text) as { sources: string[] };
    parsedMap.sources = parsedMap.sources.map((s) => sourcePath(input, baseDir, s));
    const code = js.text.replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
    return { code, sourceMap: JSON.stringify(parsedMap), version: createHash("sha256").update(code).digest("hex").slice(0, 16) };
  } catch (err) {
    if (err && typeof err === "object" && "errors" in err && Array.isArray((err as BuildFailure).errors)) {
      throw compileError(err as BuildFailure, input, baseDir, fallbackFile);
    }
    throw err;
  }
}
