// The load client: undici's `request` on one Pool per origin. Node's fetch costs about 2.5x more client
// CPU per request, and on a 2-core machine the client competes with the server it measures.
import { Pool } from "undici";
import { cacheHost } from "../shared/node/peers.js";

export interface Reply {
  status: number;
  /** `"200"`, or `"409 lock-conflict"` for a problem+json answer. */
  outcome: string;
  /** Body text of a non-2xx answer (2xx bodies are discarded unread unless the call asked to read them). */
  body?: string;
  /** The parsed body of a 2xx answer, when the call passed `read`. */
  json?: unknown;
}

/**
 * Several origins (the nodes of a multi-process cluster p1..pN, in that order, each serving the
 * whole API): calls go to them in turn, round-robin, one Pool each; except cache calls naming a
 * cache node (`?node=nK`), which go to the node that hosts it, as a client of a cache node would
 * (another node would forward them over HTTP).
 */
export class Client {
  private readonly pools: Pool[];
  private next = 0;
  private readonly headers: Record<string, string> = {};

  constructor(origins: string | string[], connections: number, token?: string) {
    const list = typeof origins === "string" ? [origins] : origins;
    if (list.length === 0) throw new Error("Client: no origins");
    this.pools = list.map(
      (origin) =>
        new Pool(origin, {
          connections,
          // One request per connection at a time: the concurrency is the number of workers, not of pipelined requests.
          pipelining: 1,
          // The server answers 503 after ~4 s without a leader; these bound a request that never answers at all.
          headersTimeout: 15_000,
          bodyTimeout: 15_000,
        }),
    );
    if (token) this.headers.authorization = `Bearer ${token}`;
  }

  private poolFor(path: string): Pool {
    const cacheNode = /[?&]node=n([1-9][0-9]*)/.exec(path);
    if (cacheNode !== null && this.pools.length > 1) {
      return this.pools[cacheHost(Number(cacheNode[1]), this.pools.length) - 1] as Pool;
    }
    const pool = this.pools[this.next] as Pool;
    this.next = (this.next + 1) % this.pools.length;
    return pool;
  }

  /** `read`: parse a 2xx body into `json` (queue receive and ack, cache GET answers); otherwise it is discarded unread. */
  async call(method: "GET" | "POST" | "PUT" | "DELETE", path: string, json?: unknown, read = false): Promise<Reply> {
    const res = await this.poolFor(path).request({
      method,
      path,
      headers: json === undefined ? this.headers : { ...this.headers, "content-type": "application/json" },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    const status = res.statusCode;
    if (status >= 200 && status < 300) {
      if (read) return { status, outcome: String(status), json: await res.body.json() };
      await res.body.dump();
      return { status, outcome: String(status) };
    }
    const body = await res.body.text();
    return { status, outcome: `${status} ${problemType(body)}`.trimEnd(), body };
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()));
  }
}

function problemType(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === "object" && "type" in parsed && typeof parsed.type === "string") return parsed.type;
  } catch {
    // Not JSON: the status alone names the outcome.
  }
  return "";
}
