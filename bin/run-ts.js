#!/usr/bin/env node
// Runs a TypeScript entry point (`npm run bench`) with the flags the engine needs, in this process
// when it already has them or in a child that never outlives this one (launch.js).
import { resolve } from "node:path";
import { launch } from "./launch.js";

const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error("usage: run-ts.js <file.ts> [args...]");
  process.exit(2);
}
await launch(resolve(script), args);
