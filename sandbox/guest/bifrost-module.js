// The "bifrost" module as workflow code sees it inside the sandbox. It is bundled into every
// workflow module; keep it dependency-free and small.
export function workflow(definition) {
  if (definition === null || typeof definition !== "object") {
    throw new TypeError("workflow() expects an object: workflow({ name, run(ctx, params) { ... } })");
  }
  if (typeof definition.run !== "function") {
    throw new TypeError("workflow() needs a run(ctx, params) function");
  }
  return definition;
}
