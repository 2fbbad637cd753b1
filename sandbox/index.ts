export { WorkflowSandbox } from "./isolate.js";
export type { GuestError, HostHandler, InvocationOutcome, InvokeOptions, LoadableModule, SandboxLimits } from "./isolate.js";
export { firstUserFrame, mapStack } from "./stack.js";
export { IsolatePool } from "./pool.js";
export type { IsolatePoolOptions } from "./pool.js";
