import { describe, expect, it } from "vitest";
import { DEFINITION_LIMITS, validateDefinition } from "../../engine/registry/definition.js";

const problems = (schedule: unknown) => {
  const result = validateDefinition({ name: "sync", schedule });
  return result.ok ? [] : result.problems;
};

describe("schedule.orgs in a definition", () => {
  it("keeps a list of distinct org names, and leaves it out when absent", () => {
    const result = validateDefinition({ name: "sync", schedule: { cron: "0 * * * *", orgs: ["acme", "contoso.eu"] } });
    expect(result.ok && result.definition.schedule?.orgs).toEqual(["acme", "contoso.eu"]);
    const none = validateDefinition({ name: "sync", schedule: { cron: "0 * * * *" } });
    expect(none.ok && "orgs" in none.definition.schedule!).toBe(false);
  });

  it("names what is wrong with a bad list", () => {
    expect(problems({ cron: "0 * * * *", orgs: [] }).join()).toMatch(/schedule.orgs: must be a list of 1 to 10000 org names/);
    expect(problems({ cron: "0 * * * *", orgs: "acme" }).join()).toMatch(/schedule.orgs: must be a list/);
    expect(problems({ cron: "0 * * * *", orgs: ["acme", "acme"] }).join()).toMatch(/schedule.orgs: "acme" is listed twice/);
    expect(problems({ cron: "0 * * * *", orgs: ["has space"] }).join()).toMatch(/schedule.orgs: "has space" is not an org name/);
    expect(problems({ cron: "0 * * * *", orgs: [42] }).join()).toMatch(/schedule.orgs: 42 is not an org name/);
    // A long guest string is measured and quoted short, never handed whole to the pattern.
    expect(problems({ cron: "0 * * * *", orgs: ["a".repeat(100_000)] }).join().length).toBeLessThan(400);
    expect(problems({ cron: "0 * * * *", orgs: Array.from({ length: DEFINITION_LIMITS.maxScheduleOrgs + 1 }, (_, i) => `o${i}`) }).join()).toMatch(/1 to 10000/);
  });

  it("names a bad expression or zone", () => {
    expect(problems({ cron: "61 * * * *" }).join()).toMatch(/schedule: invalid cron expression "61 \* \* \* \*"/);
    expect(problems({ cron: "0 9 * * 1", timezone: "Mars/Olympus" }).join()).toMatch(/schedule: unknown time zone "Mars\/Olympus"/);
  });
});
