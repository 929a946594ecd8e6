// A small Server-Sent Events client over fetch, for tests, benchmarks and scripts (browsers have
// EventSource). It can pause reading, which is how a slow client is simulated.
import { SseParser, type SseMessage } from "./sse.ts";

export interface ReceivedMessage extends SseMessage {
  /** When the chunk holding it arrived (epoch ms). */
  receivedAt: number;
}

export interface EventStream {
  status: number;
  /** The JSON error body when the status is not 200. */
  error: unknown;
  messages: ReceivedMessage[];
  /** Comment lines seen (heartbeats). */
  comments(): number;
  /** Stops reading from the socket (the server's buffer for this client fills up). */
  pause(): void;
  resume(): void;
  /** True once the server ended the stream or the connection broke. */
  readonly ended: boolean;
  /** Resolves when the stream ends, for whatever reason. */
  done: Promise<void>;
  /** Aborts the connection. */
  close(): void;
}

/** Opens `url` as an event stream; `onMessage` sees each event as it is parsed. */
export async function openEventStream(url: string, onMessage?: (message: ReceivedMessage) => void): Promise<EventStream> {
  const abort = new AbortController();
  const response = await fetch(url, { headers: { Accept: "text/event-stream" }, signal: abort.signal });
  const messages: ReceivedMessage[] = [];
  const parser = new SseParser();
  let paused = false;
  let resumed: (() => void) | undefined;
  let ended = false;
  let error: unknown = null;
  let done: Promise<void> = Promise.resolve();
  if (response.status !== 200 || !response.body) {
    ended = true;
    const text = await response.text();
    try {
      error = JSON.parse(text);
    } catch {
      error = text;
    }
  } else {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    done = (async () => {
      try {
        for (;;) {
          while (paused) await new Promise<void>((resolve) => (resumed = resolve));
          const { value, done: finished } = await reader.read();
          if (finished) return;
          const receivedAt = Date.now();
          for (const message of parser.feed(value)) {
            const received = { ...message, receivedAt };
            messages.push(received);
            onMessage?.(received);
          }
        }
      } catch {
        // Aborted or the connection broke: the stream has ended either way.
      } finally {
        ended = true;
      }
    })();
  }
  return {
    status: response.status,
    error,
    messages,
    comments: () => parser.comments,
    pause: () => void (paused = true),
    resume: () => {
      paused = false;
      resumed?.();
    },
    get ended() {
      return ended;
    },
    done,
    close: () => {
      paused = false;
      resumed?.();
      abort.abort();
    },
  };
}
