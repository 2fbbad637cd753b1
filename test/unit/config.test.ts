import { describe, expect, it } from "vitest";
import { BifrostError } from "../../common/errors.js";
import { loadConfig } from "../../engine/config.js";

function refusal(env: Record<string, string>): BifrostError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof BifrostError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe("loadConfig", () => {
  it("reads every usual spelling of a switch, in any case", () => {
    for (const on of ["1", "true", "TRUE", "yes", "Yes", "on", " ON "]) expect(loadConfig({ BIFROST_WATCH: on }).watch, on).toBe(true);
    for (const off of ["0", "false", "False", "no", "NO", "off", "Off"]) expect(loadConfig({ BIFROST_WATCH: off }).watch, off).toBe(false);
    expect(loadConfig({}).watch).toBe(true);
    expect(loadConfig({ BIFROST_WATCH: "" }).watch).toBe(true);
  });

  it("refuses any other value of a switch with CONFIG_INVALID naming the variable", () => {
    for (const bad of ["nope", "2", "disabled", "y"]) {
      const err = refusal({ BIFROST_WATCH: bad });
      expect(err.code).toBe("CONFIG_INVALID");
      expect(err.message).toContain(`BIFROST_WATCH=${JSON.stringify(bad)} is invalid`);
      expect(err.message).toContain("0, false, no or off");
    }
  });

  it("refuses DATABASE_URL as a configuration problem, with a fix about that variable", () => {
    const err = refusal({ DATABASE_URL: "postgres://localhost/bifrost" });
    expect(err.code).toBe("CONFIG_INVALID");
    expect(err.message).toMatch(/^DATABASE_URL is set, but this release supports only the embedded SQLite database/);
    expect(err.fix).toMatch(/^Unset DATABASE_URL/);
    expect(err.fix).not.toMatch(/writable/);
  });

  it("refuses a public URL that is not http(s)", () => {
    expect(refusal({ BIFROST_PUBLIC_URL: "localhost:7071" }).message).toMatch(/^BIFROST_PUBLIC_URL="localhost:7071" is invalid: expected an http:\/\/ or https:\/\/ URL/);
    expect(loadConfig({ BIFROST_PUBLIC_URL: "https://bifrost.example.com/" }).publicUrl).toBe("https://bifrost.example.com");
  });

  it("names the variable of a bad number or level", () => {
    expect(refusal({ BIFROST_PORT: "70000" }).message).toMatch(/^BIFROST_PORT="70000" is invalid/);
    expect(refusal({ LOG_LEVEL: "loud" }).message).toBe('LOG_LEVEL="loud" is invalid: use one of fatal, error, warn, info, debug, trace, silent');
  });
});
