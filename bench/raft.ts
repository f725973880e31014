/**
 * npm run bench:raft [-- --seconds 5 --batch 256 --nodes 3]
 * A 3-node in-memory Raft cluster (no network simulation) committing batches of commands.
 * Each tick the leader proposes one batch and every message in flight moves one hop, so commit
 * latency in ticks counts round trips. Prints committed commands/s and p50/p99 latency in ticks.
 */

import { intFlag } from "../scripts/args.js";
import { MemoryStorage, type Message, Rand, RawNode } from "../shared/raft/index.js";

const arg = (name: string, fallback: number): number => intFlag(name) ?? fallback;

const seconds = arg("seconds", 5);
const batch = arg("batch", 256);
const size = arg("nodes", 3);
const ids = Array.from({ length: size }, (_, i) => i + 1);
const conf = { voters: ids, learners: [] };
const storages = new Map(ids.map((id) => [id, new MemoryStorage(conf)]));
const nodes = new Map(
  ids.map((id) => [
    id,
    new RawNode({
      id,
      storage: storages.get(id) as MemoryStorage,
      electionTick: 10,
      heartbeatTick: 1,
      rand: new Rand(id),
      maxEntriesPerMsg: 8192,
    }),
  ]),
);
const leader = nodes.get(1) as RawNode;
const payload = JSON.stringify({ op: "put", key: "k".repeat(16), value: "v".repeat(32) });
const commands = Array.from({ length: batch }, () => payload);

let inFlight: Message[] = [];
let committed = 0;
let tick = 0;
/** Proposal tick of each batch, by the index of its first entry. */
const proposedAt = new Map<number, number>();
const latencies: number[] = [];

/** Persist, collect messages, apply: the host loop of raw-node.ts, with in-memory storage. */
function drain(id: number, node: RawNode, out: Message[]): void {
  const storage = storages.get(id) as MemoryStorage;
  while (node.hasReady()) {
    const rd = node.ready();
    if (rd.snapshot) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    for (const m of rd.messages) out.push(m);
    if (id === 1) {
      for (const e of rd.committedEntries) {
        if (e.data === "") continue;
        committed++;
        const at = proposedAt.get(e.index);
        if (at !== undefined) {
          latencies.push(tick - at);
          proposedAt.delete(e.index);
        }
      }
    }
    node.advance(rd);
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last !== undefined && last.index - storage.firstIndex() > 50_000) storage.createSnapshot(last.index, "");
  }
}

function round(): void {
  tick++;
  const out: Message[] = [];
  for (const m of inFlight) nodes.get(m.to)?.step(m);
  for (const node of nodes.values()) node.tick();
  if (leader.status().role === "leader") {
    const { index } = leader.propose(commands);
    proposedAt.set(index, tick);
  }
  for (const [id, node] of nodes) drain(id, node, out);
  inFlight = out;
}

leader.campaign();
while (leader.status().role !== "leader") round();
// Warm up the JIT, then measure.
const warmUntil = Date.now() + 500;
while (Date.now() < warmUntil) round();
committed = 0;
latencies.length = 0;
const start = process.hrtime.bigint();
const deadline = Date.now() + seconds * 1000;
while (Date.now() < deadline) round();
const elapsed = Number(process.hrtime.bigint() - start) / 1e9;

latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
const rate = Math.round(committed / elapsed);
console.log(`bench:raft: ${size} nodes, batch ${batch}, ${elapsed.toFixed(1)} s`);
console.log(`  committed ${committed} commands: ${rate.toLocaleString("en-US")} commands/s`);
console.log(`  commit latency (ticks, one message hop per tick): p50 ${pct(50)}, p99 ${pct(99)}`);
