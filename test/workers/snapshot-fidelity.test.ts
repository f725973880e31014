// Snapshots and log entries survive SQLite byte for byte: text outside the BMP (emoji, surrogate
// pairs), lone-surrogate escapes in JSON, whatever the snapshot row size (issue 8, fault 1).
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SqliteStorage } from "../../objects/sqlite-storage";
import { groupKey, placeMessages } from "../../shared/queue/placement";
import type { ConfState, Entry } from "../../shared/raft/index";
import { Rand } from "../../shared/raft/rand";
import { isWellFormedText, splitText, sqliteTextRoundTrip } from "../../shared/replica/chunks";
import { groupOf } from "../../workers/groups";
import { EMOJI, randomText } from "../helpers/random-text";
import { clusterGroups, post, ready, waitFor } from "./client";

/** Lone surrogates and JSON-escape look-alikes too: any JavaScript string a value may hold. */
const TEXT = { maxRun: 40, escapes: true, lone: true };

const genesis: ConfState = { voters: [1, 2, 3], learners: [] };

/** A Durable Object of its own per test: never named g<group>-p<peer>, so no Raft peer starts in it. */
function object(name: string) {
  return env.RAFT_PEER.get(env.RAFT_PEER.idFromName(`snapshot-fidelity-${name}`));
}

/** Runs `fn` on a freshly loaded SqliteStorage inside the object (what a wake after a restart does). */
async function withStorage<T>(name: string, fn: (s: SqliteStorage) => T, snapshotChunkChars?: number): Promise<T> {
  return runInDurableObject(object(name), (_instance, state) =>
    fn(new SqliteStorage(state.storage, genesis, { snapshotChunkChars })),
  );
}

/** A restart: the object's in-memory state is torn down; only its SQLite database remains. */
async function restart(name: string): Promise<void> {
  await evictDurableObject(object(name));
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function randomJson(r: Rand, depth: number): Json {
  switch (depth <= 0 ? r.int(4) : r.int(6)) {
    case 0:
      return r.pick([null, true, false]);
    case 1:
      return r.int(2_000_001) - 1_000_000;
    case 2:
    case 3:
      return randomText(r, 30, TEXT);
    case 4:
      return Array.from({ length: r.int(6) }, () => randomJson(r, depth - 1));
    default: {
      const o: { [k: string]: Json } = {};
      for (let i = r.int(6); i > 0; i--) o[randomText(r, 4, TEXT)] = randomJson(r, depth - 1);
      return o;
    }
  }
}

/** Describes where two strings first differ, for a readable failure. */
function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  const hex = (s: string) => [...s.slice(Math.max(0, i - 2), i + 3)].map((c) => c.codePointAt(0)?.toString(16));
  return a === b ? "identical" : `differ at unit ${i} of ${a.length}/${b.length}: ${hex(a)} vs ${hex(b)}`;
}

describe("snapshot fidelity in Durable Object SQLite", () => {
  it("a snapshot of any JSON value survives a restart byte for byte, for every chunk size 1..9", async () => {
    const name = "create";
    for (let seed = 1; seed <= 60; seed++) {
      const r = new Rand(seed);
      const value = { seed, state: randomJson(r, 4), tail: randomText(r, 60, TEXT) };
      const data = JSON.stringify(value);
      const chunk = 1 + (seed % 9);
      // Log entry `seed`, then compacted into a snapshot at it (each round's snapshot replaces the last).
      await withStorage(
        name,
        (s) => {
          s.persist({ entries: [{ index: seed, term: 1, type: "normal", data: "" }] });
          s.createSnapshot(seed, data);
        },
        chunk,
      );
      await restart(name);
      const loaded = await withStorage(name, (s) => s.snapshot());
      expect(loaded.metadata).toEqual({ index: seed, term: 1, conf: genesis });
      expect(firstDifference(loaded.data, data), `seed ${seed}, chunk ${chunk}`).toBe("identical");
      expect(JSON.parse(loaded.data)).toEqual(value);
    }
  }, 60_000);

  it("a snapshot installed from a leader (InstallSnapshot) survives a restart byte for byte", async () => {
    for (let seed = 1; seed <= 30; seed++) {
      const r = new Rand(1000 + seed);
      const value = { seed, state: randomJson(r, 4), tail: EMOJI.join("").repeat(r.range(1, 5)) };
      const data = JSON.stringify(value);
      const chunk = 1 + (seed % 9);
      const snapshot = { metadata: { index: 10 * seed, term: 2, conf: genesis }, data };
      // A follower with a log of its own: the snapshot replaces all of it.
      await withStorage(
        "install",
        (s) => {
          const last = s.lastIndex();
          s.persist({ entries: [{ index: last + 1, term: 1, type: "normal", data: "stale" }] });
          s.persist({ entries: [], snapshot });
        },
        chunk,
      );
      await restart("install");
      const loaded = await withStorage("install", (s) => ({ snap: s.snapshot(), last: s.lastIndex() }));
      expect(loaded.snap.metadata).toEqual(snapshot.metadata);
      expect(loaded.last).toBe(10 * seed);
      expect(firstDifference(loaded.snap.data, data), `seed ${seed}, chunk ${chunk}`).toBe("identical");
      expect(JSON.parse(loaded.snap.data)).toEqual(value);
    }
  }, 60_000);

  it("log entries whose data holds astral characters survive a restart byte for byte", async () => {
    const r = new Rand(7);
    const entries: Entry[] = Array.from({ length: 60 }, (_, i) => ({
      index: i + 1,
      term: 1,
      type: "normal",
      data: `e1\nreq-${i}\n${i}\n${JSON.stringify({ body: randomJson(r, 3), emoji: randomText(r, 20, TEXT) })}`,
    }));
    await withStorage("entries", (s) => {
      s.persist({ hardState: { term: 1, vote: 1, commit: 0 }, entries });
    });
    await restart("entries");
    const loaded = await withStorage("entries", (s) => s.entries(1, 61));
    expect(loaded.length).toBe(entries.length);
    for (const [i, e] of entries.entries()) {
      expect(firstDifference(loaded[i]?.data ?? "", e.data), `entry ${e.index}`).toBe("identical");
    }
    expect(loaded).toEqual(entries);
  });

  it("sqliteTextRoundTrip is what the real SQLite TEXT column does, lone surrogates included", async () => {
    const r = new Rand(99);
    const samples = ["", "a\uD83D", "\uDE00b", "\uD83D\uDE00", "\uDBFF\uDBFF", "\uDFFF\uD800", "é😀", EMOJI.join("")];
    for (let i = 0; i < 200; i++) samples.push(randomText(r, 12, TEXT));
    // Every chunk of a well-formed string is itself stored intact.
    for (let i = 0; i < 50; i++) {
      for (const c of splitText(JSON.stringify(randomText(r, 20, TEXT)), r.range(1, 9))) samples.push(c);
    }
    const stored = await runInDurableObject(object("model"), (_instance, state) => {
      const sql = state.storage.sql;
      sql.exec("CREATE TABLE IF NOT EXISTS probe (k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
      return samples.map((v, k) => {
        sql.exec("INSERT OR REPLACE INTO probe (k, v) VALUES (?, ?)", k, v);
        return sql.exec<{ v: string }>("SELECT v FROM probe WHERE k = ?", k).one().v;
      });
    });
    let lone = 0;
    for (const [k, v] of samples.entries()) {
      expect(firstDifference(stored[k] ?? "", sqliteTextRoundTrip(v)), `sample ${k}`).toBe("identical");
      expect(stored[k] === v, `sample ${k}`).toBe(isWellFormedText(v));
      if (!isWellFormedText(v)) lone++;
    }
    expect(lone).toBeGreaterThan(20); // the samples did exercise lone surrogates
  });

  it("message bodies with emoji come back byte for byte after compaction and a crash of every peer", async () => {
    // End to end through the Worker and three RaftPeers with the default 512 Ki-unit rows. All
    // messages go to one shard (ids chosen to hash to it; no keys, so no per-key order slows the
    // receives): its group's snapshot (compacted after 100 entries, RAFT_COMPACT_EVERY) holds
    // ~2.3 Mi units of almost nothing but surrogate pairs, so four row boundaries fall in message
    // text. Whether a boundary falls inside a pair depends on the snapshot's exact layout, about
    // one chance in two each: before issue 8's fix this failed unless all four were lucky (with
    // Rand(11) and 12 it lost one or two messages). The reproduction that does not depend on luck
    // is the first test of this file.
    await ready();
    const queue = "emoji";
    const shards = Number(env.QUEUE_SHARDS ?? 8);
    const posts = 110;
    const perPost = 10;
    const ids: string[] = [];
    for (let n = 0; ids.length < posts * perPost; n++) {
      if (placeMessages(queue, [{ id: `e-${n}` }], shards, 0)[0] === 0) ids.push(`e-${n}`);
    }
    const r = new Rand(11);
    const sent = new Map<string, unknown>();
    for (let i = 0; i < posts; i++) {
      const messages = ids.slice(perPost * i, perPost * (i + 1)).map((id) => {
        let text = "";
        while (text.length < 2000) {
          const k = r.int(20);
          text += k === 0 ? "é" : k < 10 ? r.pick(EMOJI) : String.fromCodePoint(r.range(0x10000, 0x10ffff));
        }
        // A lone surrogate in a value travels as the escape \ud83d (JSON.stringify writes it so).
        const body = { text, lone: r.chance(1, 10) ? "\ud83d" : "\u00e9", id };
        sent.set(id, body);
        return { body, id };
      });
      const res = await post(`/v1/queues/${queue}/messages`, { messages });
      expect(res.status).toBe(200);
      expect(res.json.messages.every((m: { shard: number }) => m.shard === 0)).toBe(true);
    }
    const group = `g${groupOf(env, groupKey(queue, 0))}`;
    for (const peer of ["p1", "p2", "p3"]) {
      expect((await post(`/v1/admin/peers/${peer}/crash`)).status).toBe(200);
      expect((await post(`/v1/admin/peers/${peer}/restart`)).status).toBe(200);
      await waitFor(async () => ((await clusterGroups()).find((g) => g.group === group)?.leader ? true : undefined));
    }
    const received = new Map<string, unknown>();
    for (;;) {
      const got = await post(`/v1/queues/${queue}/receive`, { max: 100, visibilityMs: 120_000 });
      expect(got.status).toBe(200);
      if (got.json.messages.length === 0) break;
      for (const m of got.json.messages as { id: string; body: unknown }[]) received.set(m.id, m.body);
    }
    expect(received.size).toBe(sent.size);
    const damaged = [...sent].filter(([id, body]) => JSON.stringify(received.get(id)) !== JSON.stringify(body));
    expect(damaged.map(([id]) => id)).toEqual([]);
    expect(received).toEqual(sent);
  }, 120_000);
});
