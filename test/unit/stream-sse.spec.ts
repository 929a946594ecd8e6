import { strict as assert } from "node:assert";
import { SseParser, sseComment, sseFrame, sseRetry } from "../../src/stream/sse.ts";

describe("live stream: Server-Sent Events framing", () => {
  it("frames events with id, event and one data field per line", () => {
    assert.equal(sseFrame("telemetry", '{"a":1}', 7), 'id: 7\nevent: telemetry\ndata: {"a":1}\n\n');
    assert.equal(sseFrame("snapshot", "x"), "event: snapshot\ndata: x\n\n");
    assert.equal(sseFrame("note", "one\r\ntwo\nthree"), "event: note\ndata: one\ndata: two\ndata: three\n\n");
    assert.equal(sseComment("heart\nbeat"), ": heart beat\n\n");
    assert.equal(sseRetry(3000), "retry: 3000\n\n");
  });

  it("parses what it frames, however the bytes are split", () => {
    const text = sseRetry(1000) + sseComment("hello") + sseFrame("snapshot", '{"d":1}') + sseFrame("telemetry", '{"seq":1}', 1) + sseFrame("note", "a\nb") + sseFrame("telemetry", '{"seq":2}', 2);
    const crlf = text.replace(/\n/g, "\r\n");
    for (const input of [text, crlf]) {
      for (let size = 1; size <= 7; size++) {
        const parser = new SseParser();
        const events = [];
        for (let i = 0; i < input.length; i += size) events.push(...parser.feed(input.slice(i, i + size)));
        assert.deepEqual(
          events.map((e) => [e.event, e.id, e.data]),
          [
            ["snapshot", "", '{"d":1}'],
            ["telemetry", "1", '{"seq":1}'],
            ["note", "1", "a\nb"],
            ["telemetry", "2", '{"seq":2}'],
          ],
          `chunks of ${size}${input === crlf ? " with CRLF" : ""}`,
        );
        assert.equal(parser.comments, 1);
      }
    }
  });

  it("names an event without an event field `message` and ignores frames without data", () => {
    const parser = new SseParser();
    assert.deepEqual(parser.feed("data: x\n\nevent: empty\n\n"), [{ event: "message", id: "", data: "x" }]);
  });
});
