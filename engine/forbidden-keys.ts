/**
 * Keys that can rewrite an object's prototype once a parsed value is merged or assigned into
 * another object (`__proto__`, and `constructor` holding a `prototype`). JSON.parse keeps them as
 * plain own properties, so they are harmless until someone spreads the value with Object.assign;
 * refusing them at the edge means nothing downstream has to care.
 *
 * Iterative (a 100,000-deep value costs a loop, not a stack) and linear in the value's size.
 */

export interface ForbiddenKey {
  /** `__proto__` or `constructor.prototype`. */
  key: string;
  /** Where it sits, as property names and array indexes from the root. */
  path: string[];
}

interface Frame {
  value: unknown;
  key: string;
  parent: Frame | undefined;
}

function pathOf(frame: Frame): string[] {
  const path: string[] = [];
  for (let f: Frame | undefined = frame; f?.parent; f = f.parent) path.push(f.key);
  return path.reverse();
}

export function findForbiddenKey(root: unknown): ForbiddenKey | undefined {
  const stack: Frame[] = [{ value: root, key: "", parent: undefined }];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const v = frame.value;
    if (v === null || typeof v !== "object" || seen.has(v)) continue;
    seen.add(v);
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: String(i), parent: frame });
      continue;
    }
    const record = v as Record<string, unknown>;
    if (Object.hasOwn(record, "__proto__")) return { key: "__proto__", path: pathOf(frame) };
    const ctor = Object.hasOwn(record, "constructor") ? record.constructor : undefined;
    if (ctor !== null && typeof ctor === "object" && Object.hasOwn(ctor, "prototype")) return { key: "constructor.prototype", path: pathOf(frame) };
    const keys = Object.keys(record);
    for (let i = keys.length - 1; i >= 0; i--) stack.push({ value: record[keys[i]!], key: keys[i]!, parent: frame });
  }
  return undefined;
}

/** `params.a.b[0]`-style text for a path, cut to a readable length. */
export function describePath(root: string, path: string[], max = 200): string {
  let text = root;
  for (const whole of path) {
    const key = whole.length > max ? whole.slice(0, max) : whole;
    text += /^\d+$/.test(key) ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
    if (text.length > max) return `${text.slice(0, max)}…`;
  }
  return text;
}
