/** The page's sections, each drawn from a snapshot (and what model.ts derives from it). */
import { type Child, h, s } from "./dom.js";
import { type GraphEdge, queueRates, type Sample, waitForGraph } from "./model.js";
import type { AdminAccess, CacheNodeView, GroupView, LockEntry, Part, Snapshot } from "./snapshot.js";

const fmt = (n: number | undefined, digits = 1): string => (n === undefined ? "–" : n.toFixed(digits));

/** Why an admin button does nothing, or undefined when it can act. */
export function adminBlocked(access: AdminAccess): string | undefined {
  if (access === "disabled") return "fault injection is disabled: start the service with FAULT_INJECTION=true";
  if (access === "closed") return "admin routes are closed: the service has no ADMIN_TOKEN";
  return undefined;
}

function unavailable(what: string, part: Part<unknown>): HTMLElement | undefined {
  return part.ok ? undefined : h("p", { class: "error" }, `${what} unavailable: ${part.error}`);
}

export function groupsView(snap: Snapshot): Node[] {
  if (!snap.groups.ok) return [unavailable("groups", snap.groups) as HTMLElement];
  const blocked = adminBlocked(snap.admin);
  return snap.groups.value.map((g) => groupCard(g, blocked));
}

function groupCard(g: GroupView, blocked: string | undefined): HTMLElement {
  const button = (action: string, peer: string, label: string) =>
    h("button", { "data-action": action, "data-peer": peer, disabled: blocked !== undefined, title: blocked }, label);
  return h(
    "section",
    { class: "card group", "data-group": g.group, "data-leader": g.leader ?? "", "data-term": g.term },
    h(
      "h3",
      {},
      g.group,
      " ",
      h(
        "small",
        {},
        g.leader === null ? h("span", { class: "error" }, "no leader") : `leader ${g.leader}`,
        ` · term ${g.term} · commit ${g.commitIndex}`,
      ),
    ),
    h(
      "table",
      {},
      h("tr", {}, h("th", {}, "peer"), h("th", {}, "role"), h("th", {}, "match"), h("th", {}, "lag"), h("th", {}, "")),
      ...g.peers.map((p) =>
        h(
          "tr",
          { class: p.role, "data-peer": p.id, "data-role": p.role },
          h("td", {}, p.id),
          h("td", {}, p.role),
          h("td", { class: "num" }, p.matchIndex),
          h("td", { class: "num" }, Math.max(0, g.commitIndex - p.matchIndex)),
          h(
            "td",
            { class: "actions" },
            button("isolate", p.id, "isolate"),
            p.role === "down" ? button("restart", p.id, "restart") : button("crash", p.id, "crash"),
          ),
        ),
      ),
    ),
  );
}

export function locksView(snap: Snapshot): Child[] {
  if (!snap.locks.ok) return [unavailable("locks", snap.locks) as HTMLElement];
  const { locks, truncated } = snap.locks.value;
  if (locks.length === 0) return [h("p", { class: "muted" }, "no lock held or waited for")];
  const { edges } = waitForGraph(locks);
  // Only owners that wait or are waited for: the table lists the rest.
  const owners = [...new Set(edges.flatMap((e) => [e.waiter, e.holder]))].sort();
  return [
    h(
      "div",
      { class: "row" },
      h(
        "div",
        {},
        h(
          "table",
          { class: "locks" },
          h("tr", {}, h("th", {}, "resource"), h("th", {}, "mode"), h("th", {}, "holders"), h("th", {}, "waiting")),
          ...locks.map((l) => lockRow(l, snap.at)),
        ),
        truncated ? h("p", { class: "muted" }, "(the first 1000 locks)") : null,
      ),
      edges.length === 0 ? h("p", { class: "muted" }, "nobody waits") : graphView(owners, edges),
    ),
  ];
}

function lockRow(l: LockEntry, now: number): HTMLElement {
  return h(
    "tr",
    { "data-resource": l.resource },
    h("td", {}, l.resource),
    h("td", {}, l.mode ?? "–"),
    h(
      "td",
      {},
      ...l.holders.map((x) =>
        h(
          "span",
          { class: "owner", "data-holder": x.owner },
          `${x.owner} (${x.mode}, ${Math.max(0, Math.round((x.expiresAt - now) / 1000))} s) `,
          h("button", { "data-action": "release", "data-resource": l.resource, "data-owner": x.owner }, "release"),
        ),
      ),
    ),
    h(
      "td",
      {},
      ...l.waiters.map((w) => h("span", { class: "owner", "data-waiter": w.owner }, `${w.owner} (${w.mode})`)),
    ),
  );
}

/** Owners on a circle, an arrow from each waiter to each holder it waits for; red along a cycle. */
function graphView(owners: string[], edges: GraphEdge[]): SVGSVGElement {
  const size = 240;
  const r = size / 2 - 36;
  const at = new Map(
    owners.map((o, i) => {
      const angle = (2 * Math.PI * i) / owners.length - Math.PI / 2;
      return [o, { x: size / 2 + r * Math.cos(angle), y: size / 2 + r * Math.sin(angle) }];
    }),
  );
  const arrow = (id: string, cls: string) =>
    s(
      "marker",
      { id, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: cls }),
    );
  return s(
    "svg",
    { class: "graph", viewBox: `0 0 ${size} ${size}`, width: size, height: size, role: "img" },
    s("title", {}, "wait-for graph: waiter → holder"),
    s("defs", {}, arrow("arrow", "edge-head"), arrow("arrow-cycle", "edge-head cycle")),
    ...edges.map((e) => {
      const a = at.get(e.waiter) as { x: number; y: number };
      const b = at.get(e.holder) as { x: number; y: number };
      // Stop short of the holder's circle so the arrowhead shows.
      const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
      const cut = 16 / len;
      return s(
        "line",
        {
          x1: a.x,
          y1: a.y,
          x2: b.x - (b.x - a.x) * cut,
          y2: b.y - (b.y - a.y) * cut,
          class: e.onCycle ? "edge cycle" : "edge",
          "marker-end": e.onCycle ? "url(#arrow-cycle)" : "url(#arrow)",
          "data-edge": `${e.waiter}>${e.holder}`,
          "data-cycle": e.onCycle,
        },
        s("title", {}, `${e.waiter} waits for ${e.holder} (${e.resource})`),
      );
    }),
    ...owners.map((o) => {
      const p = at.get(o) as { x: number; y: number };
      return s(
        "g",
        { class: "owner-node" },
        s("circle", { cx: p.x, cy: p.y, r: 14 }),
        s("text", { x: p.x, y: p.y - 20, "text-anchor": "middle" }, o),
      );
    }),
  );
}

export function queuesView(snap: Snapshot, previous: Snapshot | undefined): Node[] {
  if (!snap.queues.ok) return [unavailable("queues", snap.queues) as HTMLElement];
  if (snap.queues.value.length === 0) return [h("p", { class: "muted" }, "no queue yet")];
  const rates = queueRates(previous, snap);
  const cols = ["queue", "visible", "in flight", "delayed", "DLQ", "enqueued/s", "acked/s"];
  return [
    h(
      "table",
      { class: "queues" },
      h("tr", {}, ...cols.map((c) => h("th", {}, c))),
      ...snap.queues.value.map((q) => {
        const r = rates.get(q.queue);
        return h(
          "tr",
          { "data-queue": q.queue },
          h("td", {}, q.queue),
          h("td", { class: "num" }, q.visible),
          h("td", { class: "num" }, q.inflight),
          h("td", { class: "num" }, q.delayed),
          h("td", { class: q.dlq > 0 ? "num error" : "num" }, q.dlq),
          h("td", { class: "num" }, fmt(r?.enqueuedPerSecond)),
          h("td", { class: "num" }, fmt(r?.ackedPerSecond)),
        );
      }),
    ),
  ];
}

export function cacheView(snap: Snapshot): Node[] {
  return snap.cache.map((n) =>
    n.ok
      ? cacheCard(n.value)
      : h("section", { class: "card", "data-node": n.node }, h("h3", {}, n.node), unavailable(n.node, n)),
  );
}

function cacheCard(n: CacheNodeView): HTMLElement {
  const held = n.states.M + n.states.E + n.states.S;
  return h(
    "section",
    { class: "card cache", "data-node": n.node },
    h(
      "h3",
      {},
      n.node,
      " ",
      h("small", {}, `${held}/${n.capacity} lines · hit rate ${(n.stats.hitRate * 100).toFixed(0)}%`),
    ),
    h(
      "p",
      { class: "muted" },
      h("span", { class: "line M" }, `M ${n.states.M}`),
      " ",
      h("span", { class: "line E" }, `E ${n.states.E}`),
      " ",
      h("span", { class: "line S" }, `S ${n.states.S}`),
      ` · ${n.stats.hits} hits, ${n.stats.misses} misses, ${n.stats.invalidations} invalidations, ${n.stats.evictions} evictions`,
    ),
    h(
      "div",
      { class: "lines" },
      ...n.lines.map((l) =>
        h("span", { class: `line ${l.state}`, "data-key": l.key, title: `${l.key}: ${l.state}` }, l.key),
      ),
      held > n.lines.length ? h("span", { class: "muted" }, ` +${held - n.lines.length} more`) : null,
    ),
  );
}

/** A sparkline per series of the samples, with its latest value. */
export function sparklinesView(samples: readonly Sample[], window: number): Node[] {
  const series: [string, (x: Sample) => number | undefined, string][] = [
    ["requests/s", (x) => x.requestsPerSecond, ""],
    ["mean latency", (x) => x.meanMs, " ms"],
    ["p99 latency", (x) => x.p99Ms, " ms"],
  ];
  return series.map(([name, value, unit]) => {
    const values = samples.map(value);
    const last = values[values.length - 1];
    return h(
      "figure",
      { class: "spark", "data-series": name },
      sparkline(values, window),
      h(
        "figcaption",
        {},
        `${name}: ${last === undefined ? "–" : `${fmt(last)}${unit}`}`,
        h("span", { class: "muted" }, ` (peak ${fmt(Math.max(0, ...values.map((v) => v ?? 0)))}${unit})`),
      ),
    );
  });
}

function sparkline(values: (number | undefined)[], window: number): SVGSVGElement {
  const w = 180;
  const hgt = 36;
  const max = Math.max(1e-9, ...values.map((v) => v ?? 0));
  const offset = window - values.length;
  const points = values
    .map((v, i) =>
      v === undefined ? undefined : `${((offset + i) * w) / (window - 1)},${hgt - 2 - (v / max) * (hgt - 4)}`,
    )
    .filter((p) => p !== undefined)
    .join(" ");
  return s(
    "svg",
    { width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}` },
    s("polyline", { points, class: "spark-line" }),
  );
}
