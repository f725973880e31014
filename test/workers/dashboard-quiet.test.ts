// An open dashboard must not keep an idle cluster awake: its stream reads every group once a
// second, and on Cloudflare a woken group costs alarms, heartbeats and duration (quiescence,
// docs/architecture.md). Its reads are served from the leaders' state without waking them.
import { env } from "cloudflare:workers";
import { beforeAll, expect, it } from "vitest";
import type { Snapshot } from "../../dashboard/snapshot";
import { readEvents } from "../../dashboard/sse";
import app from "../../workers/index";
import { post, ready } from "./client";

/** How long every follower must have been silent: several election timeouts (10 ticks of 50 ms). */
const QUIET_FOR_MS = 2500;

beforeAll(ready, 20_000);

it("an open dashboard stream lets idle groups go quiet, and still shows what they hold", async () => {
  // Something to show: a queue with a message; then nothing else happens. (Not a held lock: a
  // group with a lease pending still wakes while it waits for the lease's end, a known gap of
  // quiescence, docs/architecture.md.)
  expect((await post("/v1/queues/quiet-q/messages", { messages: [{ body: 1 }] })).status).toBe(200);

  const res = await app.fetch(new Request("http://example.com/dashboard/events"), env);
  let last: Snapshot | undefined;
  const quietGroups = (s: Snapshot) =>
    s.groups.ok &&
    s.groups.value.every((g) => g.peers.every((p) => p.role === "leader" || (p.lastContactMs ?? 0) > QUIET_FOR_MS));
  // Up to 12 snapshots (12 s): the groups quiesce about an election timeout after the last request.
  const enough = new AbortController();
  let n = 0;
  await readEvents(
    res.body as ReadableStream<Uint8Array>,
    (e) => {
      last = JSON.parse(e.data) as Snapshot;
      if (++n >= 12 || quietGroups(last)) enough.abort();
    },
    enough.signal,
  );
  if (last === undefined || !last.groups.ok) throw new Error("no snapshot of the groups");
  const contact = last.groups.value.map((g) => `${g.group}: ${g.peers.map((p) => `${p.id}=${p.lastContactMs}`)}`);
  expect(quietGroups(last), `followers' last contact (ms) in the last snapshot: ${contact.join("; ")}`).toBe(true);
  // Quiet, yet the page still reads the locks and the queue.
  if (!last.locks.ok || !last.queues.ok) throw new Error("locks or queues missing from the snapshot");
  expect(last.queues.value.find((q) => q.queue === "quiet-q")).toMatchObject({ visible: 1 });
}, 30_000);
