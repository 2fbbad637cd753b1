/**
 * Whether an invocation has spent its CPU budget. isolated-vm's `cpuTime` counts the segment that
 * is running now in wall-clock time, so on a loaded machine it runs ahead of the CPU the isolate
 * really used. The process's own CPU time (all its threads) can never be below the isolate's, so
 * requiring both keeps a busy machine from turning a run that merely waits for a core (a memory
 * bomb, say) into a CPU-limit kill, while a real CPU hog passes both at once.
 */
export function cpuBudgetSpent(isolateCpuNs: bigint, processCpuUs: number, budgetMs: number): boolean {
  return isolateCpuNs > BigInt(budgetMs) * 1_000_000n && processCpuUs > budgetMs * 1000;
}
