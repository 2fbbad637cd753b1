import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BifrostError } from "../common/errors.js";
import { loadConfig } from "../engine/config.js";
import { openSecretBox, SECRET_KEY_ENV } from "../engine/secrets/key.js";
import { parseKeyText } from "../engine/secrets/seal.js";
import { openStorage } from "../storage/index.js";
import type { Storage } from "../storage/types.js";
import { openTestEngine, tempDir, workflowSource } from "./helpers.js";

async function withStorage(dataDir: string, fn: (s: Storage) => Promise<void>): Promise<void> {
  const storage = await openStorage({ dataDir });
  try {
    await fn(storage);
  } finally {
    await storage.close();
  }
}

const box = (storage: Storage, dataDir: string, envKey?: string) => openSecretBox({ envKey, dataDir, check: storage.secretKeyCheck, now: 1_000 });

async function refusal(promise: Promise<unknown>): Promise<BifrostError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BifrostError);
  return err as BifrostError;
}

describe("the engine's secret key", () => {
  it("is generated once into <dataDir>/secret.key, readable by its owner only, and reused", async () => {
    const dataDir = tempDir();
    await withStorage(dataDir, async (s) => {
      const first = await box(s, dataDir);
      expect(first.source).toEqual({ kind: "file", name: join(dataDir, "secret.key"), generated: true });
      expect(statSync(join(dataDir, "secret.key")).mode & 0o777).toBe(0o600);
      expect(parseKeyText(readFileSync(join(dataDir, "secret.key"), "utf8"))).toHaveLength(32);
      const sealed = first.seal("s3cret", "ctx");
      const second = await box(s, dataDir);
      expect(second.source.generated).toBe(false);
      expect(second.open(sealed, "ctx")).toBe("s3cret");
    });
  });

  it("comes from BIFROST_SECRET_KEY when it is set (hex or base64), and no file is written", async () => {
    const dataDir = tempDir();
    const key = randomBytes(32);
    await withStorage(dataDir, async (s) => {
      const a = await box(s, dataDir, key.toString("hex"));
      expect(a.source).toEqual({ kind: "env", name: SECRET_KEY_ENV, generated: false });
      const sealed = a.seal("s3cret", "ctx");
      expect((await box(s, dataDir, key.toString("base64"))).open(sealed, "ctx")).toBe("s3cret");
      expect(() => statSync(join(dataDir, "secret.key"))).toThrow();
    });
  });

  it("a wrong key stops the engine at once, naming the variable or the file", async () => {
    const dataDir = tempDir();
    await withStorage(dataDir, async (s) => {
      await box(s, dataDir, randomBytes(32).toString("hex"));
      const wrongEnv = await refusal(box(s, dataDir, randomBytes(32).toString("hex")));
      expect(wrongEnv.code).toBe("SECRET_KEY_INVALID");
      expect(wrongEnv.message).toBe("BIFROST_SECRET_KEY is not the key this database's secrets were sealed with");
      // Without the variable the engine would use (and create) the key file: a different key again.
      const missingFile = await refusal(box(s, dataDir));
      expect(missingFile.message).toContain(`${join(dataDir, "secret.key")} is missing`);
      expect(() => statSync(join(dataDir, "secret.key"))).toThrow();
    });
    const other = tempDir();
    await withStorage(other, async (s) => {
      await box(s, other);
      writeFileSync(join(other, "secret.key"), `${randomBytes(32).toString("base64")}\n`);
      const wrongFile = await refusal(box(s, other));
      expect(wrongFile).toMatchObject({ code: "SECRET_KEY_INVALID", message: `The key in ${join(other, "secret.key")} is not the key this database's secrets were sealed with` });
      writeFileSync(join(other, "secret.key"), "garbage\n");
      expect((await refusal(box(s, other))).message).toContain("does not hold a key");
      unlinkSync(join(other, "secret.key"));
      expect((await refusal(box(s, other))).fix).toContain("Restore");
    });
  });

  it("a malformed BIFROST_SECRET_KEY is CONFIG_INVALID naming the variable, without echoing it", () => {
    const value = "not-a-key-but-a-password-someone-typed";
    let err: unknown;
    try {
      loadConfig({ BIFROST_SECRET_KEY: value });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "CONFIG_INVALID", message: expect.stringContaining("BIFROST_SECRET_KEY is invalid") });
    expect(JSON.stringify({ message: (err as Error).message, fix: (err as BifrostError).fix })).not.toContain(value);
    expect(loadConfig({ BIFROST_SECRET_KEY: randomBytes(32).toString("base64") }).secretKey).toBeDefined();
    expect(loadConfig({}).secretKey).toBeUndefined();
  });

  it("the engine refuses to open on a wrong key, and warns about a key file others can read", async () => {
    const dataDir = tempDir();
    const first = await openTestEngine({ dataDir, workflows: { "hook.ts": workflowSource("hook", "return 1;", "\n  webhook: true,") } });
    const secret = (await first.engine.webhooks.info("hook")).secret;
    await first.engine.stop(0);
    const wrong = await refusal(openTestEngine({ dataDir, config: { secretKey: randomBytes(32).toString("hex") } }));
    expect(wrong).toMatchObject({ code: "SECRET_KEY_INVALID", message: "BIFROST_SECRET_KEY is not the key this database's secrets were sealed with" });
    chmodSync(join(dataDir, "secret.key"), 0o644);
    const again = await openTestEngine({ dataDir });
    try {
      expect((await again.engine.webhooks.info("hook")).secret).toBe(secret);
      expect(again.logLines().some((l) => l.includes("the secret key file can be read by other users"))).toBe(true);
    } finally {
      await again.engine.stop(0);
    }
  });

  it("a value that fails its check is SECRET_CORRUPT, never garbage", async () => {
    const dataDir = tempDir();
    await withStorage(dataDir, async (s) => {
      const secrets = await box(s, dataDir);
      const sealed = secrets.seal("s3cret", "webhook:a");
      expect(() => secrets.open(sealed, "webhook:b")).toThrow(expect.objectContaining({ code: "SECRET_CORRUPT" }));
    });
  });
});
