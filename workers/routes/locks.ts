import { type Context, Hono } from "hono";
import { clusterShape, parsePeerId } from "../../shared/cluster.js";
import type { LockReply, LockRequest } from "../../shared/locks/lock-service.js";
import type { LockView } from "../../shared/locks/types.js";
import type { Env } from "../env.js";
import { callGroup, groupOf } from "../groups.js";
import { noQuorum, pathName, readBody, validate } from "../http.js";
import { requestIdOf } from "../idempotency.js";
import { problem } from "../problem.js";
import {
  AcquireBody,
  type DeadlockProblem,
  type GrantReply,
  type LockConflictProblem,
  LockListQuery,
  type LockListReply,
  type LockViewReply,
  ReleaseBody,
  type ReleaseReply,
  RenewBody,
  type RenewReply,
  type Reply,
} from "../schemas.js";

/** How long the Worker looks for a leader that can commit before answering 503. */
const LEADER_DEADLINE_MS = 4000;

export const locks = new Hono<{ Bindings: Env }>();

locks.post("/:resource/acquire", async (c) => {
  const resource = pathName(c, "resource");
  if (!resource.ok) return resource.response;
  const body = await readBody(c, AcquireBody);
  if (!body.ok) return body.response;
  const answer = run(c, { op: "acquire", resource: resource.value, ...body.value });
  return body.value.waitMs > 0 ? releaseWhenGone(c, resource.value, body.value.owner, answer) : answer;
});

/**
 * A client that disconnects while its acquire waits will never use the lock (on Cloudflare,
 * `request.signal` fires then; Miniflare 4 never fires it, so the tests abort it themselves). The
 * Worker releases for it, as the client library does when it gives up: a release by an owner that
 * is still waiting withdraws the wait, so it is never granted; if the grant raced in first, the
 * release frees the lock. A release that finds nothing (the acquire was not applied yet) is sent
 * again once the acquire answers, if that answer is a grant. `waitUntil` keeps this running past
 * the disconnect (for as long as the platform allows; past that the lease's TTL frees it).
 *
 * The answer of a request whose client left is never a grant: nobody reads it now, but its
 * Idempotency-Key stores it, and a retry with that key (the client library retries a dropped
 * connection) must not be told it holds a lock the Worker has released.
 */
async function releaseWhenGone(
  c: Context<{ Bindings: Env }>,
  resource: string,
  owner: string,
  answer: Promise<Response>,
): Promise<Response> {
  const startedAt = Date.now();
  const signal = c.req.raw.signal;
  let gone = false;
  const release = () => run(c, { op: "release", resource, owner }, crypto.randomUUID());
  const onAbort = () => {
    gone = true;
    const done = (async () => {
      if ((await release()).status === 200) return; // withdrawn, or released
      if ((await answer).status === 200) await release();
    })();
    c.executionCtx.waitUntil(done);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  try {
    const res = await answer;
    if (!gone || res.status !== 200) return res;
    return problem("lock-conflict", `the wait for ${resource} was withdrawn: the client disconnected`, {
      extra: { holders: [], waitedMs: Date.now() - startedAt } satisfies ConflictFields,
    });
  } finally {
    // Once the acquire has answered, the client has its answer: a later disconnect is its own business.
    signal.removeEventListener("abort", onAbort);
  }
}

locks.post("/:resource/release", async (c) => {
  const resource = pathName(c, "resource");
  if (!resource.ok) return resource.response;
  const body = await readBody(c, ReleaseBody);
  if (!body.ok) return body.response;
  return run(c, { op: "release", resource: resource.value, owner: body.value.owner });
});

locks.post("/:resource/renew", async (c) => {
  const resource = pathName(c, "resource");
  if (!resource.ok) return resource.response;
  const body = await readBody(c, RenewBody);
  if (!body.ok) return body.response;
  return run(c, { op: "renew", resource: resource.value, ...body.value });
});

locks.get("/:resource", async (c) => {
  const resource = pathName(c, "resource");
  if (!resource.ok) return resource.response;
  return run(c, { op: "view", resource: resource.value });
});

/** The most locks one `GET /v1/locks` lists. */
const MAX_LISTED_LOCKS = 1000;

/** Held and waited-for locks of every group whose name starts with `prefix`, sorted by resource. */
locks.get("/", async (c) => {
  const query = validate(LockListQuery, c.req.query(), "query");
  if (!query.ok) return query.response;
  const prefix = query.value.prefix ?? "";
  const { groups } = clusterShape(c.env);
  // Each group answers its first MAX_LISTED_LOCKS in order: the first of all of them are among those.
  const stale = query.value.stale === "true";
  const req: LockRequest = { op: "list", resource: "", prefix, limit: MAX_LISTED_LOCKS, stale };
  const replies = await Promise.all(
    Array.from({ length: groups }, (_, g) =>
      callGroup(c.env, g, (peer, name) => peer.lock(name, req, crypto.randomUUID()), LEADER_DEADLINE_MS),
    ),
  );
  const all: LockView[] = [];
  let truncated = false;
  for (const r of replies) {
    if (!r.ok) return noQuorum(r.detail);
    if (r.value.type !== "list") return noQuorum("the outcome of the request could not be confirmed");
    all.push(...r.value.locks);
    truncated ||= r.value.truncated;
  }
  all.sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
  if (all.length > MAX_LISTED_LOCKS) truncated = true;
  return c.json({
    locks: all
      .slice(0, MAX_LISTED_LOCKS)
      .map(({ resource, mode, holders, waiters }) => ({ resource, mode, holders, waiters })),
    truncated,
  } satisfies Reply<typeof LockListReply>);
});

/** Sends the request to the leader of the resource's group and maps the answer to HTTP. */
async function run(
  c: Context<{ Bindings: Env }>,
  req: LockRequest,
  // One id for every attempt: a retry at another peer after a crash or a lost reply applies once.
  requestId = requestIdOf(c),
): Promise<Response> {
  const group = groupOf(c.env, req.resource);
  const via = parsePeerId(c.req.header("x-raft-peer") ?? "");
  const startedAt = Date.now();
  const out = await callGroup(c.env, group, (peer, name) => peer.lock(name, req, requestId), LEADER_DEADLINE_MS, via);
  if (!out.ok) return noQuorum(out.detail);
  return toResponse(out.value, Date.now() - startedAt);
}

/** The extension members of the 409s (workers/schemas.ts documents them). */
type ConflictFields = Pick<Reply<typeof LockConflictProblem>, "holders" | "waitedMs">;
type DeadlockFields = Pick<Reply<typeof DeadlockProblem>, "cycle">;

/** `waitedMs`: how long this request took, which for a 409 after waiting is how long it waited. */
function toResponse(reply: LockReply, waitedMs: number): Response {
  switch (reply.type) {
    case "granted": {
      const { resource, owner, mode, fencingToken, expiresAt } = reply;
      return Response.json({ resource, owner, mode, fencingToken, expiresAt } satisfies Reply<typeof GrantReply>);
    }
    case "conflict":
      return problem("lock-conflict", `${reply.resource} is held by others`, {
        extra: { holders: reply.holders, waitedMs: 0 } satisfies ConflictFields,
      });
    case "timedOut":
      return problem("lock-conflict", `${reply.resource} is still held by others after waiting ${waitedMs} ms`, {
        extra: { holders: reply.holders, waitedMs } satisfies ConflictFields,
      });
    case "deadlock":
      return problem("deadlock", `waiting for ${reply.resource} would deadlock`, {
        extra: { cycle: reply.cycle } satisfies DeadlockFields,
      });
    case "withdrawn":
      return Response.json({ released: false, withdrawn: true } satisfies Reply<typeof ReleaseReply>);
    case "cancelled":
      if ("reason" in reply && reply.reason === "withdrawn") {
        return problem("lock-conflict", `the wait for ${reply.resource} was withdrawn by a release of ${reply.owner}`, {
          extra: { holders: [], waitedMs } satisfies ConflictFields,
        });
      }
      if ("cycle" in reply) {
        return problem("deadlock", `the wait for ${reply.resource} closed a deadlock`, {
          extra: { cycle: reply.cycle } satisfies DeadlockFields,
        });
      }
      return noQuorum();
    case "released":
      return Response.json({ released: true } satisfies Reply<typeof ReleaseReply>);
    case "renewed":
      return Response.json({ expiresAt: reply.expiresAt } satisfies Reply<typeof RenewReply>);
    case "notHolder":
      return problem("not-holder", `${reply.owner} does not hold ${reply.resource}`);
    case "view":
      return Response.json(reply.view satisfies Reply<typeof LockViewReply>);
    default:
      // A held request lost contact with its group (or an answer that cannot happen here).
      return noQuorum("the outcome of the request could not be confirmed");
  }
}
