/**
 * The page at /dashboard: reads the snapshot stream (GET /dashboard/events), draws it, and sends
 * the admin actions (partition, crash, restart, heal) and a little traffic through the client
 * library (client/), which runs in the browser as it does in Node and Workers. Tokens the user
 * types stay in sessionStorage: gone when the tab closes.
 */
import { SyncClient, SyncError } from "../client/index.js";
import { fill } from "./dom.js";
import { pushBounded, type Sample, sampleBetween } from "./model.js";
import type { Snapshot } from "./snapshot.js";
import { readEvents } from "./sse.js";
import { adminBlocked, cacheView, groupsView, locksView, queuesView, sparklinesView } from "./views.js";

const WINDOW = 60;
const RECONNECT_MS = 1000;
const MAX_NOTICES = 4;

/** Numbers the notices (data-seq), so a reader can tell a new one from an older one with the same text. */
let noticeSeq = 0;
let latest: Snapshot | undefined;
let previous: Snapshot | undefined;
let samples: Sample[] = [];

const input = (id: string) => document.getElementById(id) as HTMLInputElement;
const token = (kind: "api" | "admin") => sessionStorage.getItem(`${kind}-token`) ?? "";

function setStatus(text: string, cls = ""): void {
  const el = document.getElementById("status") as HTMLElement;
  el.textContent = text;
  el.className = cls;
}

/** Adds a line to the log of actions (newest first; the last few kept). */
function notice(text: string, cls = ""): void {
  const log = document.getElementById("notices") as HTMLElement;
  const line = document.createElement("li");
  line.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  line.className = cls;
  line.dataset.seq = String(++noticeSeq);
  log.prepend(line);
  while (log.children.length > MAX_NOTICES) log.lastElementChild?.remove();
}

function render(): void {
  if (latest === undefined) return;
  fill("groups", ...groupsView(latest));
  fill("locks", ...locksView(latest));
  fill("queues", ...queuesView(latest, previous));
  fill("cache", ...cacheView(latest));
  fill("sparklines", ...sparklinesView(samples, WINDOW));
  const blocked = adminBlocked(latest.admin);
  fill("admin-state", blocked ?? (latest.admin === "token" ? "admin actions send the admin token" : ""));
  (document.getElementById("heal") as HTMLButtonElement).disabled = blocked !== undefined;
}

function onSnapshot(snap: Snapshot): void {
  if (latest !== undefined) samples = pushBounded(samples, sampleBetween(latest, snap), WINDOW);
  previous = latest;
  latest = snap;
  render();
  setStatus(`live · updated ${new Date().toLocaleTimeString()}`, "ok");
}

/** Streams snapshots for as long as the page is open; each stream ends after a while and is opened again. */
async function stream(): Promise<never> {
  for (;;) {
    try {
      const api = token("api");
      const res = await fetch("/dashboard/events", {
        headers: { accept: "text/event-stream", ...(api ? { authorization: `Bearer ${api}` } : {}) },
      });
      if (res.status === 401) {
        setStatus("the stream needs the API token: enter it under Tokens", "error");
        (document.getElementById("tokens") as HTMLDetailsElement).open = true;
        await waitForTokenChange();
        continue;
      }
      if (!res.ok || res.body === null) throw new Error(`${res.status} ${res.statusText}`);
      await readEvents(res.body, (e) => {
        if (e.event === "snapshot") onSnapshot(JSON.parse(e.data) as Snapshot);
      });
    } catch (err) {
      setStatus(`reconnecting (${err instanceof Error ? err.message : String(err)})`, "error");
    }
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

let tokenChanged: (() => void) | undefined;
const waitForTokenChange = () => new Promise<void>((r) => (tokenChanged = r));

/**
 * The client as the page's user: the admin token for admin routes (else the API token). It retries
 * as it does everywhere: isolating a leader cuts off the group that records the request's
 * Idempotency-Key too, so the first answer may be a 503 until that group has a new leader.
 */
function client(admin = false): SyncClient {
  const bearer = (admin && token("admin")) || token("api");
  return new SyncClient({ url: location.origin, ...(bearer ? { token: bearer } : {}) });
}

/** Why a call failed, in a few words. */
const why = (err: unknown) => (err instanceof SyncError ? `${err.status} ${err.detail ?? err.title}` : String(err));

/** Says what an admin call did, or why it did nothing. */
async function adminAction(label: string, action: (admin: SyncClient["admin"]) => Promise<unknown>): Promise<void> {
  try {
    await action(client(true).admin);
    return notice(`${label}: done`, "ok");
  } catch (err) {
    if (err instanceof SyncError && err.status === 404)
      return notice(`${label}: fault injection is disabled (FAULT_INJECTION=true enables it)`, "error");
    if (err instanceof SyncError && (err.status === 401 || err.status === 403)) {
      (document.getElementById("tokens") as HTMLDetailsElement).open = true;
      return notice(`${label}: needs the admin token (${err.detail ?? err.title})`, "error");
    }
    notice(`${label}: ${why(err)}`, "error");
  }
}

/** Every peer id the groups know (peer ids are the same in every group). */
function peerIds(): string[] {
  if (!latest?.groups.ok) return [];
  return [...new Set(latest.groups.value.flatMap((g) => g.peers.map((p) => p.id)))].sort();
}

/**
 * A few lock acquires and releases on names spread over the groups: wakes idle groups, so a cut-off
 * leader is replaced. One batch at a time (the button is disabled meanwhile): two batches on the
 * same names would only contend with each other, and their notices could not be told apart.
 */
async function sendTraffic(button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  try {
    await trafficBatch();
  } finally {
    button.disabled = false;
  }
}

async function trafficBatch(): Promise<void> {
  const locks = client().locks;
  const results = await Promise.all(
    Array.from({ length: 24 }, async (_, i) => {
      const resource = `dashboard-traffic-${i}`;
      try {
        await locks.acquire(resource, { owner: "dashboard", ttlMs: 2000 });
        await locks.release(resource, { owner: "dashboard" });
        return 200;
      } catch (err) {
        return err instanceof SyncError ? err.status : "no answer";
      }
    }),
  );
  const ok = results.filter((s) => s === 200).length;
  notice(
    `traffic: ${ok} of ${results.length} acquires granted${ok < results.length ? ` (others: ${[...new Set(results.filter((s) => s !== 200))].join(", ")})` : ""}`,
    ok === results.length ? "ok" : "error",
  );
}

async function takeLock(form: HTMLFormElement): Promise<void> {
  const data = new FormData(form);
  const resource = String(data.get("resource"));
  const owner = String(data.get("owner"));
  const ttlMs = Number(data.get("ttl")) * 1000;
  try {
    const grant = await client().locks.acquire(resource, { owner, ttlMs });
    notice(`${owner} holds ${resource} (fencing token ${grant.fencingToken})`, "ok");
  } catch (err) {
    notice(`acquire ${resource}: ${why(err)}`, "error");
  }
}

async function onClick(target: HTMLElement): Promise<void> {
  const action = target.dataset.action;
  const peer = target.dataset.peer ?? "";
  switch (action) {
    case "isolate":
      return adminAction(`isolate ${peer}`, (admin) => admin.partition([[peer], peerIds().filter((p) => p !== peer)]));
    case "crash":
      return adminAction(`crash ${peer}`, (admin) => admin.crash(peer));
    case "restart":
      return adminAction(`restart ${peer}`, (admin) => admin.restart(peer));
    case "heal":
      return adminAction("heal", (admin) => admin.heal());
    case "traffic":
      return sendTraffic(target as HTMLButtonElement);
    case "release": {
      const { resource = "", owner = "" } = target.dataset;
      try {
        await client().locks.release(resource, { owner });
        return notice(`release ${resource} by ${owner}: done`, "ok");
      } catch (err) {
        return notice(`release ${resource} by ${owner}: ${why(err)}`, "error");
      }
    }
  }
}

function main(): void {
  for (const kind of ["api", "admin"] as const) {
    const field = input(`${kind}-token`);
    field.value = token(kind);
    field.addEventListener("change", () => {
      sessionStorage.setItem(`${kind}-token`, field.value.trim());
      tokenChanged?.();
    });
  }
  document.addEventListener("click", (e) => {
    // One listener for every button: the sections are redrawn every second.
    const target = (e.target as Element).closest<HTMLElement>("[data-action]");
    if (target === null || (target as HTMLButtonElement).disabled) return;
    onClick(target).catch((err: unknown) => notice(String(err), "error"));
  });
  (document.getElementById("take-lock") as HTMLFormElement).addEventListener("submit", (e) => {
    e.preventDefault();
    takeLock(e.target as HTMLFormElement).catch((err: unknown) => notice(String(err), "error"));
  });
  void stream();
}

main();
