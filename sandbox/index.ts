export { WorkflowSandbox } from "./isolate.js";
export type { GuestError, HostCallError, HostFaultHandler, HostHandler, InvocationOutcome, InvokeOptions, LoadableModule, RunInput, SandboxLimits } from "./isolate.js";
export { GUEST_BOUNDS, capStack, readGuestError, stepNameProblem } from "./bounds.js";
export { firstUserFrame, mapStack, parseFrameLocation } from "./stack.js";
export { IsolatePool } from "./pool.js";
export type { IsolatePoolOptions } from "./pool.js";
