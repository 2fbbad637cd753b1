#!/usr/bin/env node
// The `bifrost` command: the CLI (engine/cli/main.ts), started with the flags the engine needs, in
// this process when it already has them or in a child that never outlives this one (launch.js).
import { fileURLToPath } from "node:url";
import { launch } from "./launch.js";

await launch(fileURLToPath(new URL("../engine/cli/main.ts", import.meta.url)), process.argv.slice(2));
