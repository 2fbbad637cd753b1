/**
 * A cron expression in words ("at 09:00 on Monday", "every 15 minutes"), for listings. Pure.
 * Fields it cannot put simply (L, W, #, H, ?) are quoted as they are, so the words are never wrong.
 */

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAY_NAMES: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };
const MONTH_NAMES: Record<string, number> = { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 };

type Field =
  | { kind: "any" }
  | { kind: "step"; every: number }
  | { kind: "list"; values: number[] }
  | { kind: "range"; from: number; to: number }
  | { kind: "raw"; text: string };

function numberOf(text: string, names: Record<string, number> | undefined): number | undefined {
  if (/^\d{1,2}$/.test(text)) return Number(text);
  const n = names?.[text.toLowerCase()];
  return n;
}

function field(text: string, names?: Record<string, number>): Field {
  if (text === "*" || text === "?") return { kind: "any" };
  const step = /^\*\/(\d{1,2})$/.exec(text);
  if (step) return Number(step[1]) === 1 ? { kind: "any" } : { kind: "step", every: Number(step[1]) };
  const range = /^(\w{1,3})-(\w{1,3})$/.exec(text);
  if (range) {
    const from = numberOf(range[1]!, names);
    const to = numberOf(range[2]!, names);
    if (from !== undefined && to !== undefined) return { kind: "range", from, to };
  }
  const parts = text.split(",");
  const values = parts.map((p) => numberOf(p, names));
  if (parts.length <= 12 && values.every((v) => v !== undefined)) return { kind: "list", values: values as number[] };
  return { kind: "raw", text };
}

const two = (n: number) => String(n).padStart(2, "0");
const joinWords = (words: string[]) => (words.length <= 1 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`);
const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;

const single = (f: Field): number | undefined => (f.kind === "list" && f.values.length === 1 ? f.values[0] : undefined);

function timeWords(second: Field, minute: Field, hour: Field, seconds: boolean): string {
  const s = seconds ? single(second) : 0;
  const m = single(minute);
  if (s !== undefined && m !== undefined) {
    if (hour.kind === "list") return `at ${joinWords(hour.values.map((h) => `${two(h)}:${two(m)}${s ? `:${two(s)}` : ""}`))}`;
    return `${m === 0 && s === 0 ? "at the start of" : `at minute ${m}${s ? ` second ${s}` : ""} of`} ${everyHour(hour)}`;
  }
  const parts: string[] = [];
  if (s === undefined) {
    parts.push(unitWords(second, "second"));
    if (minute.kind !== "any") parts.push(unitWords(minute, "minute"));
  } else {
    parts.push(unitWords(minute, "minute"));
    if (s !== 0) parts.push(`at second ${s}`);
  }
  if (hour.kind !== "any") parts.push(inHours(hour));
  return parts.join(" ");
}

function unitWords(f: Field, unit: string): string {
  switch (f.kind) {
    case "any":
      return `every ${unit}`;
    case "step":
      return `every ${plural(f.every, unit)}`;
    case "list":
      return `at ${unit} ${joinWords(f.values.map(String))}`;
    case "range":
      return `every ${unit} from ${f.from} to ${f.to}`;
    case "raw":
      return `at ${unit} "${f.text}"`;
  }
}

/** After "at the start of": which hours. */
function everyHour(f: Field): string {
  switch (f.kind) {
    case "any":
      return "every hour";
    case "step":
      return `every ${plural(f.every, "hour")}`;
    case "range":
      return `every hour between ${two(f.from)}:00 and ${two(f.to)}:59`;
    default:
      return inHours(f).replace(/^in /, "");
  }
}

/** After "every 10 minutes": which hours. */
function inHours(f: Field): string {
  switch (f.kind) {
    case "any":
      return "";
    case "step":
      return `in every ${plural(f.every, "hour")}`;
    case "list":
      return `in the ${joinWords(f.values.map((h) => `${two(h)}:00`))} hour${f.values.length === 1 ? "" : "s"}`;
    case "range":
      return `between ${two(f.from)}:00 and ${two(f.to)}:59`;
    case "raw":
      return `in hour "${f.text}"`;
  }
}

function dayWords(dom: Field, month: Field, dow: Field): string {
  const parts: string[] = [];
  const dayName = (d: number) => DAYS[d % 7] ?? String(d);
  if (dow.kind === "list") parts.push(`on ${joinWords(dow.values.map(dayName))}`);
  else if (dow.kind === "range") parts.push(`on ${dayName(dow.from)} to ${dayName(dow.to)}`);
  else if (dow.kind === "step") parts.push(`every ${dow.every} days of the week`);
  else if (dow.kind === "raw") parts.push(`on weekday "${dow.text}"`);
  if (dom.kind === "list") parts.push(`${dow.kind === "any" ? "on" : "or on"} day ${joinWords(dom.values.map(String))} of the month`);
  else if (dom.kind === "range") parts.push(`${dow.kind === "any" ? "on" : "or on"} days ${dom.from} to ${dom.to} of the month`);
  else if (dom.kind === "step") parts.push(`every ${dom.every} days of the month`);
  else if (dom.kind === "raw") parts.push(`on day "${dom.text}" of the month`);
  const monthName = (m: number) => MONTHS[m - 1] ?? String(m);
  if (month.kind === "list") parts.push(`in ${joinWords(month.values.map(monthName))}`);
  else if (month.kind === "range") parts.push(`from ${monthName(month.from)} to ${monthName(month.to)}`);
  else if (month.kind === "step") parts.push(`every ${plural(month.every, "month")}`);
  else if (month.kind === "raw") parts.push(`in month "${month.text}"`);
  return parts.join(" ");
}

/** The expression in words, e.g. "at 09:00 on Monday" or "every 15 minutes". */
export function describeCron(expression: string): string {
  const fields = expression.trim().split(/\s+/);
  const seconds = fields.length === 6;
  const [sec, min, hour, dom, month, dow] = seconds ? fields : ["0", ...fields];
  if (min === undefined || hour === undefined || dom === undefined || month === undefined || dow === undefined) return `cron "${expression}"`;
  const time = timeWords(field(sec ?? "0"), field(min), field(hour), seconds);
  const days = dayWords(field(dom), field(month, MONTH_NAMES), field(dow, DAY_NAMES));
  return [time, days].filter(Boolean).join(" ");
}
