// Server-Sent Events framing (https://html.spec.whatwg.org/multipage/server-sent-events.html):
// writing frames on the server, and an incremental parser for clients, tests and benchmarks.

export interface SseMessage {
  /** `message` when the frame names none. */
  event: string;
  /** The last `id:` seen on the stream so far (SSE carries it over), "" before any. */
  id: string;
  data: string;
}

/** One event frame; `data` may hold line breaks (each line becomes a `data:` field). */
export function sseFrame(event: string, data: string, id?: string | number): string {
  const idLine = id === undefined ? "" : `id: ${id}\n`;
  const dataLines = /[\r\n]/.test(data) ? data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`).join("") : `data: ${data}\n`;
  return `${idLine}event: ${event}\n${dataLines}\n`;
}

/** A comment line: ignored by clients, keeps proxies and load balancers from closing an idle stream. */
export function sseComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, " ")}\n\n`;
}

/** Tells EventSource clients how long to wait before reconnecting. */
export function sseRetry(ms: number): string {
  return `retry: ${Math.round(ms)}\n\n`;
}

/** Incremental SSE parser: feed text as it arrives, get the complete events. */
const LINE_BREAK = /\r\n|\r|\n/g;

export class SseParser {
  #buffer = "";
  #event = "";
  #data: string[] = [];
  #lastId = "";
  #comments = 0;
  /** A CR ended the previous chunk: a LF at the start of the next one belongs to it. */
  #pendingCr = false;

  /** Comment lines seen (heartbeats). */
  get comments(): number {
    return this.#comments;
  }

  feed(text: string): SseMessage[] {
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    this.#buffer += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (;;) {
      LINE_BREAK.lastIndex = start;
      const found = LINE_BREAK.exec(this.#buffer);
      if (!found) break;
      // A lone CR at the very end may be the first half of a CRLF split across chunks.
      if (found[0] === "\r" && found.index === this.#buffer.length - 1) this.#pendingCr = true;
      this.#line(this.#buffer.slice(start, found.index), out);
      start = found.index + found[0].length;
    }
    this.#buffer = this.#buffer.slice(start);
    return out;
  }

  #line(line: string, out: SseMessage[]): void {
    if (line === "") {
      if (this.#data.length > 0) out.push({ event: this.#event || "message", id: this.#lastId, data: this.#data.join("\n") });
      this.#event = "";
      this.#data = [];
      return;
    }
    if (line.startsWith(":")) {
      this.#comments++;
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
    else if (field === "id" && !value.includes("\0")) this.#lastId = value;
  }
}
