import { describe, expect, it } from "vitest";
import { definitionLine, lineAt, problemField } from "../../engine/registry/locate.js";

describe("lines of definition problems in a module's text", () => {
  const text = `import { workflow } from "bifrost";
const displayname: string = "x";
export default workflow({
  "description": "quoted",
  // displayname: the tail of another word is not the field
  name: "n",
  schedule: { cron: "61 * * * *" },
  run() {},
});
`;

  it("finds the field at fault after workflow(, bare or quoted, not as the tail of another word", () => {
    expect(definitionLine(text, "name")).toBe(6);
    expect(definitionLine(text, "description")).toBe(4);
    expect(definitionLine(text, "schedule")).toBe(7);
    // Absent or unknown fields point at the definition itself.
    expect(definitionLine(text, "retry")).toBe(3);
    expect(definitionLine(text, "constructor")).toBe(3);
    expect(definitionLine("export default {}", "name")).toBeUndefined();
  });

  it("reads the field from a problem's own prefix", () => {
    expect(problemField('schedule.cron: "61 * * * *" is invalid')).toBe("schedule");
    expect(problemField('name: "Bad" must match')).toBe("name");
    expect(problemField('workflow: unknown field "x"')).toBeUndefined();
    expect(lineAt("a\nb\nc", 4)).toBe(3);
  });
});
