import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BifrostError } from "../../common/errors.js";
import type { SecretKeyCheckRepository } from "../../storage/types.js";
import { keyFingerprint, newKey, open, parseKeyText, seal, SealError } from "./seal.js";

export const SECRET_KEY_ENV = "BIFROST_SECRET_KEY";
export const SECRET_KEY_FILE = "secret.key";

export interface SecretKeyOptions {
  /** BIFROST_SECRET_KEY, when set: 32 bytes as base64 or 64 hex digits. */
  envKey: string | undefined;
  dataDir: string;
  check: SecretKeyCheckRepository;
  now: number;
}

/** Where the key came from, for messages (never the key itself). */
export interface KeySource {
  kind: "env" | "file";
  /** BIFROST_SECRET_KEY, or the key file's path. */
  name: string;
  /** The key file was created by this call. */
  generated: boolean;
}

/**
 * Seals and opens secrets under the engine's key. A value that does not open is SECRET_CORRUPT:
 * it is never handed back as garbage.
 */
export class SecretBox {
  constructor(
    private readonly key: Buffer,
    readonly source: KeySource,
  ) {}

  seal(plaintext: string, context: string): string {
    return seal(this.key, plaintext, context);
  }

  open(sealed: string, context: string): string {
    try {
      return open(this.key, sealed, context);
    } catch (err) {
      if (!(err instanceof SealError)) throw err;
      throw new BifrostError("SECRET_CORRUPT", `The stored secret for ${context} does not open: ${err.message}`);
    }
  }
}

function invalid(message: string, fix: string): BifrostError {
  return new BifrostError("SECRET_KEY_INVALID", message, { fix });
}

/** A key from BIFROST_SECRET_KEY, or undefined when it is unset; a malformed one is refused without echoing it. */
export function keyFromEnv(envKey: string | undefined): Buffer | undefined {
  if (envKey === undefined || envKey.trim() === "") return undefined;
  const key = parseKeyText(envKey);
  if (!key) {
    throw new BifrostError("CONFIG_INVALID", `${SECRET_KEY_ENV} is invalid: it must be 32 bytes written as base64 (44 characters) or as 64 hex digits`, {
      fix: `Set ${SECRET_KEY_ENV} to the output of \`openssl rand -base64 32\` (or the key your secrets were sealed with), or unset it to use ${SECRET_KEY_FILE} in the data directory.`,
    });
  }
  return key;
}

function readKeyFile(path: string): Buffer | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw invalid(`The secret key file ${path} cannot be read: ${(err as Error).message}`, `Make ${path} readable by the engine, or set ${SECRET_KEY_ENV}.`);
  }
  const key = parseKeyText(text);
  if (!key) {
    throw invalid(`The secret key file ${path} does not hold a key: it must contain 32 bytes as base64 or 64 hex digits`, `Restore ${path} from a backup, or set ${SECRET_KEY_ENV} to the key the secrets were sealed with.`);
  }
  return key;
}

/** Writes a new key file readable by its owner only; another process that wrote one first wins. */
function createKeyFile(path: string): { key: Buffer; generated: boolean } {
  const key = newKey();
  try {
    writeFileSync(path, `${key.toString("base64")}\n`, { flag: "wx", mode: 0o600 });
    // The umask cannot widen 0600, but a filesystem that ignores modes at create may: set it again.
    chmodSync(path, 0o600);
    return { key, generated: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
      throw invalid(`The secret key file ${path} cannot be created: ${(err as Error).message}`, `Make the data directory writable, or set ${SECRET_KEY_ENV}.`);
    }
    const existing = readKeyFile(path);
    if (!existing) throw invalid(`The secret key file ${path} vanished while it was being created`, "Start the engine again.");
    return { key: existing, generated: false };
  }
}

/**
 * The engine's secret key: BIFROST_SECRET_KEY, else <dataDir>/secret.key, created (mode 0600) on
 * the first start. The database keeps a fingerprint of the key its secrets are sealed with, so a
 * different key stops the engine at once with SECRET_KEY_INVALID naming where the key came from.
 */
export async function openSecretBox(options: SecretKeyOptions): Promise<SecretBox> {
  const recorded = await options.check.get();
  const fromEnv = keyFromEnv(options.envKey);
  const path = join(options.dataDir, SECRET_KEY_FILE);
  let key: Buffer;
  let source: KeySource;
  if (fromEnv) {
    key = fromEnv;
    source = { kind: "env", name: SECRET_KEY_ENV, generated: false };
  } else {
    const existing = readKeyFile(path);
    if (existing) {
      key = existing;
      source = { kind: "file", name: path, generated: false };
    } else {
      // A new key would seal new secrets while the old ones could never be opened again.
      if (recorded !== undefined) {
        throw invalid(
          `The secret key file ${path} is missing, but this database's secrets were sealed with a key`,
          `Restore ${path} from a backup, or set ${SECRET_KEY_ENV} to the key the secrets were sealed with.`,
        );
      }
      const created = createKeyFile(path);
      key = created.key;
      source = { kind: "file", name: path, generated: created.generated };
    }
  }
  const fingerprint = keyFingerprint(key);
  const expected = recorded ?? (await options.check.remember(fingerprint, options.now));
  if (expected !== fingerprint) {
    const where = source.kind === "env" ? SECRET_KEY_ENV : `The key in ${path}`;
    throw invalid(
      `${where} is not the key this database's secrets were sealed with`,
      source.kind === "env"
        ? `Set ${SECRET_KEY_ENV} to the key the secrets were sealed with, or unset it if they were sealed with ${path}.`
        : `Restore the original ${path}, or set ${SECRET_KEY_ENV} to the key the secrets were sealed with.`,
    );
  }
  return new SecretBox(key, source);
}

/** True when the key file can be read by others than its owner (it should be 0600). */
export function keyFileTooOpen(path: string): boolean {
  try {
    return (statSync(path).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}
