/** Which hosts a run may call, and with which per-host limits. Pure: configuration and URL in. */
import type { AllowList, HostLimitRule } from "./config.js";
import { effectivePort, matchesHost } from "./host-patterns.js";

export interface RunScopeInfo {
  workflow: string;
  org: string | null;
}

function applies(list: AllowList, run: RunScopeInfo): boolean {
  const { scope } = list;
  if (scope.kind === "all") return true;
  if (scope.kind === "workflow") return scope.name === run.workflow;
  return run.org !== null && scope.org === run.org;
}

/**
 * Every allow-list that applies to the run restricts it: a host must be on each of them (the
 * global list, the workflow's, the org's). No list applies: every host is allowed.
 */
export function allowListProblem(lists: readonly AllowList[], run: RunScopeInfo, url: URL): string | undefined {
  const port = effectivePort(url);
  for (const list of lists) {
    if (!applies(list, run) || list.any) continue;
    if (!list.patterns.some((p) => matchesHost(p, url.hostname, port))) return `${url.host} is not on the allow-list "${list.key}" of BIFROST_HTTP_ALLOWED_HOSTS`;
  }
  return undefined;
}

/** The configured limits for a host: an exact host pattern beats a wildcard; the first of each kind wins. */
export function hostLimitsFor(rules: readonly HostLimitRule[], url: URL): HostLimitRule | undefined {
  const port = effectivePort(url);
  return rules.find((r) => !r.pattern.wildcard && matchesHost(r.pattern, url.hostname, port)) ?? rules.find((r) => r.pattern.wildcard && matchesHost(r.pattern, url.hostname, port));
}
