/**
 * An incremental parser of `text/event-stream` (the WHATWG server-sent events format): text is fed
 * as it arrives and complete events come out. Pure: the HTTP client owns the connection.
 */

export interface ServerSentEvent {
  /** `message` when the event names none. */
  event: string;
  data: string;
  /** The last `id:` seen on the stream so far (it carries over, as the format says). */
  id: string | undefined;
}

export class SseParser {
  private pending = "";
  private event = "";
  private data: string[] = [];
  private lastId: string | undefined;

  /** `maxPending` bounds an unterminated line: a peer that never ends one cannot fill memory. */
  constructor(private readonly maxPending = 4 * 1024 * 1024) {}

  /** Feeds the next piece of the stream; returns the events it completed. */
  feed(text: string): ServerSentEvent[] {
    this.pending += text;
    const events: ServerSentEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.pending.length; i++) {
      const c = this.pending.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A CR at the end of what we have may be the first half of a CRLF still on its way.
      if (c === 13 && i === this.pending.length - 1) break;
      const line = this.pending.slice(start, i);
      if (c === 13 && this.pending.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.pending = this.pending.slice(start);
    if (this.pending.length > this.maxPending) throw new Error(`a line of the event stream is longer than ${this.maxPending} characters`);
    return events;
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.lastId = value;
    return undefined;
  }

  private dispatch(): ServerSentEvent | undefined {
    const data = this.data;
    const event = this.event || "message";
    this.data = [];
    this.event = "";
    if (data.length === 0) return undefined;
    return { event, data: data.join("\n"), id: this.lastId };
  }
}
