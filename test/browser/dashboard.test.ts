/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the real
 * server (`npm start`'s scripts/start.ts with fault injection): the groups appear, a lock taken
 * over HTTP shows as held with its waiter's edge in the wait-for graph, the page's own "take lock"
 * works, and isolating a group's leader with the page's button, plus traffic, brings a new leader
 * onto the page. Saves a screenshot to test-results/dashboard.png (and with UPDATE_SCREENSHOT=1 to
 * docs/dashboard.png, the README's).
 */
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitReady } from "../../bench/server.js";
import { type ServerProcess, spawnServer } from "../cluster/server.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOT = join(ROOT, "test-results", "dashboard.png");
/** Long enough for an election after a partition (a request must wake the group first). */
const NEW_LEADER_WITHIN_MS = 30_000;

let server: ServerProcess | undefined;
let context: BrowserContext | undefined;
let page: Page;
const dirs: string[] = [];
const pageErrors: string[] = [];
/** Requests left waiting (a lock wait): aborted at the end. */
const pending = new AbortController();

/**
 * Clicks "send traffic" once the previous batch is done (the page disables the button meanwhile)
 * and returns the text of the notice this click produced: the first traffic notice numbered after
 * the click. An earlier click's notice, even with the same text, is not taken for this one's.
 */
async function sendTraffic(): Promise<string> {
  const button = page.locator('button[data-action="traffic"]:not([disabled])');
  await button.waitFor({ timeout: 35_000 });
  const seqs = await Promise.all((await page.locator("#notices li").all()).map((li) => li.getAttribute("data-seq")));
  const before = Math.max(0, ...seqs.map(Number));
  await button.click();
  // Notices are newest first, and no other batch runs while this one does.
  const newest = page.locator("#notices li", { hasText: "traffic:" }).first();
  const seqOf = async () => Number(await newest.getAttribute("data-seq", { timeout: 500 }).catch(() => 0));
  await expect.poll(seqOf, { timeout: 35_000, interval: 200 }).toBeGreaterThan(before);
  return (await newest.textContent()) ?? "";
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${server?.origin}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: pending.signal,
  });
  return { status: res.status, json: await res.json().catch(() => undefined) };
}

beforeAll(async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "dashboard-data-"));
  const profile = await mkdtemp(join(tmpdir(), "dashboard-chromium-"));
  dirs.push(dataDir, profile);
  server = await spawnServer(dataDir, { FAULT_INJECTION: "true" });
  await waitReady(server.origin);
  // A fresh profile each run; the flags keep Chromium from reaching out to the network on its own.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (err) => pageErrors.push(String(err)));
}, 90_000);

afterAll(async () => {
  pending.abort();
  await context?.close();
  await server?.stop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const group = (g: string) => page.locator(`section[data-group="${g}"]`);

describe("the dashboard in Chromium", () => {
  it("shows the groups, locks, queues and cache lines, and a new leader after the page isolates the old one", async () => {
    await page.goto(`${server?.origin}/dashboard`);
    // Every group appears with a leader.
    for (const g of ["g0", "g1", "g2"]) await page.locator(`section[data-group="${g}"][data-leader^="p"]`).waitFor();
    expect(await page.locator("section[data-group]").count()).toBe(3);
    await expect(page.locator("#status").textContent()).resolves.toMatch(/live/);

    // A lock taken over HTTP shows as held; a waiter draws its edge waiter → holder.
    expect((await api("POST", "/v1/locks/orders%2F7/acquire", { owner: "alice", ttlMs: 120_000 })).status).toBe(200);
    void api("POST", "/v1/locks/orders%2F7/acquire", { owner: "bob", ttlMs: 60_000, waitMs: 50_000 }).catch(() => {});
    await page.locator('tr[data-resource="orders/7"] [data-holder="alice"]').waitFor();
    await page.locator('tr[data-resource="orders/7"] [data-waiter="bob"]').waitFor();
    const edge = page.locator('svg.graph line[data-edge="bob>alice"]');
    await edge.waitFor({ state: "attached" }); // a vertical line has no width: "hidden" to Playwright
    expect(await edge.getAttribute("class")).toBe("edge"); // not on a cycle

    // The page's own form takes a lock.
    await page.fill('#take-lock input[name="resource"]', "reports/q3");
    await page.fill('#take-lock input[name="owner"]', "carol");
    await page.click('#take-lock button[type="submit"]');
    await page.locator('tr[data-resource="reports/q3"] [data-holder="carol"]').waitFor();

    // A queue and cache lines, for the page (and the screenshot).
    const messages = Array.from({ length: 6 }, (_, i) => ({ body: { order: i } }));
    expect((await api("POST", "/v1/queues/orders/messages", { messages })).status).toBe(200);
    expect((await api("POST", "/v1/queues/orders/receive", { max: 2 })).status).toBe(200);
    for (const [key, node] of [
      ["user:1", "n1"],
      ["user:2", "n2"],
      ["config", "n3"],
    ]) {
      expect((await api("PUT", `/v1/cache/${key}?node=${node}`, { value: key })).status).toBe(200);
    }
    expect((await api("GET", "/v1/cache/config?node=n4")).status).toBe(200); // n3's M line is shared now
    expect((await api("GET", "/v1/cache/user:1?node=n1")).json).toMatchObject({ hit: true, state: "M" });
    await page.locator('tr[data-queue="orders"]').waitFor();
    await page.locator('section[data-node="n4"] [data-key="config"]').waitFor();
    expect(await page.locator('section[data-node="n4"] [data-key="config"]').getAttribute("class")).toBe("line S");

    // Isolate g0's leader with its button; traffic wakes the group, which elects another leader.
    const old = (await group("g0").getAttribute("data-leader")) as string;
    const oldTerm = Number(await group("g0").getAttribute("data-term"));
    const isolatedAt = Date.now();
    await group("g0").locator(`tr[data-peer="${old}"] button[data-action="isolate"]`).click();
    const isolated = page.locator("#notices li", { hasText: `isolate ${old}:` }).first();
    await isolated.waitFor();
    expect(await isolated.textContent()).toContain(`isolate ${old}: done`);
    const deadline = isolatedAt + NEW_LEADER_WITHIN_MS;
    for (;;) {
      const leader = await group("g0").getAttribute("data-leader");
      if (leader && leader !== old) break;
      if (Date.now() > deadline) throw new Error(`g0 still shows leader ${leader} (isolated: ${old})`);
      const traffic = page.locator('button[data-action="traffic"]');
      if (await traffic.isEnabled()) await traffic.click(); // else the last batch is still out
      await sleep(1000);
    }
    expect(Number(await group("g0").getAttribute("data-term"))).toBeGreaterThan(oldTerm);
    console.log(`g0: new leader shown ${Date.now() - isolatedAt} ms after the click that isolated ${old}`);

    // Heal from the page; the cluster settles with every peer back.
    await page.click("#heal");
    await page.locator("#notices li", { hasText: "heal: done" }).waitFor();
    const traffic = await sendTraffic();
    expect(traffic).toMatch(/traffic: 24 of 24 acquires granted$/);
    await sleep(1500); // a couple more snapshots, so the sparklines have points

    await mkdir(join(ROOT, "test-results"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    if (process.env.UPDATE_SCREENSHOT === "1") await copyFile(SCREENSHOT, join(ROOT, "docs", "dashboard.png"));
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
