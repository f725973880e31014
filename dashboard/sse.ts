/**
 * Server-sent events read from a fetch body. The page streams over fetch rather than EventSource
 * because EventSource cannot send the Authorization header and cannot tell a 401 from a dropped
 * connection.
 */

export interface ServerEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * The complete events at the front of `buffer` and the unfinished rest (the event stream format:
 * `field: value` lines, an empty line ends an event, `data` lines join with newlines, lines
 * starting with `:` are comments).
 */
export function parseEvents(buffer: string): { events: ServerEvent[]; rest: string } {
  const events: ServerEvent[] = [];
  const blocks = buffer.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (data.length > 0) events.push({ event, data: data.join("\n"), ...(id === undefined ? {} : { id }) });
  }
  return { events, rest };
}

/**
 * Calls `onEvent` for each event of the body of `res` until the stream ends (resolves) or breaks
 * (rejects). `signal` stops reading.
 */
export async function readEvents(
  body: ReadableStream<Uint8Array>,
  onEvent: (e: ServerEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const stop = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener("abort", stop, { once: true });
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      const { events, rest } = parseEvents(buffer + decoder.decode(value, { stream: true }));
      buffer = rest;
      for (const e of events) onEvent(e);
    }
  } finally {
    signal?.removeEventListener("abort", stop);
  }
}
