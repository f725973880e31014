/**
 * The page at /dashboard: reads the snapshot stream (GET /dashboard/events), draws it, and sends
 * the admin actions (partition, crash, restart, heal) and a little traffic. Tokens the user types
 * stay in sessionStorage: gone when the tab closes.
 */
import { fill } from "./dom.js";
import { pushBounded, type Sample, sampleBetween } from "./model.js";
import type { Snapshot } from "./snapshot.js";
import { readEvents } from "./sse.js";
import { adminBlocked, cacheView, groupsView, locksView, queuesView, sparklinesView } from "./views.js";

const WINDOW = 60;
const RECONNECT_MS = 1000;
const MAX_NOTICES = 4;

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

/** A call to the API as the page's user: the admin token for admin routes (else the API token). */
async function call(method: string, path: string, body?: unknown, admin = false): Promise<Response> {
  const bearer = (admin && token("admin")) || token("api");
  return fetch(path, {
    method,
    headers: { "content-type": "application/json", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Says what an admin call did, or why it did nothing. */
async function adminAction(label: string, path: string, body: unknown = {}): Promise<void> {
  const res = await call("POST", path, body, true);
  if (res.ok) return notice(`${label}: done`, "ok");
  const detail = ((await res.json().catch(() => ({}))) as { detail?: string }).detail ?? res.statusText;
  if (res.status === 404)
    return notice(`${label}: fault injection is disabled (FAULT_INJECTION=true enables it)`, "error");
  if (res.status === 401 || res.status === 403) {
    (document.getElementById("tokens") as HTMLDetailsElement).open = true;
    return notice(`${label}: needs the admin token (${detail})`, "error");
  }
  notice(`${label}: ${res.status} ${detail}`, "error");
}

/** Every peer id the groups know (peer ids are the same in every group). */
function peerIds(): string[] {
  if (!latest?.groups.ok) return [];
  return [...new Set(latest.groups.value.flatMap((g) => g.peers.map((p) => p.id)))].sort();
}

/** A few lock acquires and releases on names spread over the groups: wakes idle groups, so a cut-off leader is replaced. */
async function sendTraffic(): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: 24 }, async (_, i) => {
      const path = `/v1/locks/dashboard-traffic-${i}`;
      const got = await call("POST", `${path}/acquire`, { owner: "dashboard", ttlMs: 2000 });
      if (got.ok) await call("POST", `${path}/release`, { owner: "dashboard" });
      return got.status;
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
  const res = await call("POST", `/v1/locks/${encodeURIComponent(resource)}/acquire`, { owner, ttlMs });
  const body = (await res.json().catch(() => ({}))) as { fencingToken?: number; detail?: string };
  if (res.ok) notice(`${owner} holds ${resource} (fencing token ${body.fencingToken})`, "ok");
  else notice(`acquire ${resource}: ${res.status} ${body.detail ?? ""}`, "error");
}

async function onClick(target: HTMLElement): Promise<void> {
  const action = target.dataset.action;
  const peer = target.dataset.peer ?? "";
  switch (action) {
    case "isolate":
      return adminAction(`isolate ${peer}`, "/v1/admin/partition", {
        sides: [[peer], peerIds().filter((p) => p !== peer)],
      });
    case "crash":
    case "restart":
      return adminAction(`${action} ${peer}`, `/v1/admin/peers/${peer}/${action}`);
    case "heal":
      return adminAction("heal", "/v1/admin/heal");
    case "traffic":
      return sendTraffic();
    case "release": {
      const { resource = "", owner = "" } = target.dataset;
      const res = await call("POST", `/v1/locks/${encodeURIComponent(resource)}/release`, { owner });
      return notice(`release ${resource} by ${owner}: ${res.status}`, res.ok ? "ok" : "error");
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
