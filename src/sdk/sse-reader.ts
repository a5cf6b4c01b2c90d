/**
 * Reads server-sent events from a response body: yields each event's `data` (JSON text). An
 * event `data: {"error", "code"}` — how anyserve reports an error after a stream has started —
 * is thrown as that AnyServeError.
 */
import { AnyServeError, isErrorCode } from "../errors.js";

export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncIterable<string> {
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = event
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(l.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (data === "") continue;
      throwIfErrorEvent(data);
      yield data;
    }
  }
}

function throwIfErrorEvent(data: string): void {
  // Only error events start with {"error": — answers start with {"model_name" or {"outputs".
  if (!data.startsWith('{"error"')) return;
  const parsed = JSON.parse(data) as { error?: unknown; code?: unknown };
  if (typeof parsed.error === "string") {
    throw new AnyServeError(isErrorCode(parsed.code) ? parsed.code : "INTERNAL", parsed.error);
  }
}
