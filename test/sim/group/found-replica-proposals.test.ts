/**
 * Found by the group simulator with the cache in it (seed 91, with the delete fix of
 * found-cache-delete.test.ts applied): a proposal made by a leader that was deposed before it
 * committed is never settled when the same peer, leading again in a later term, proposes at the
 * same log index. Replica.proposeInbox overwrites the pending entry of the proposals map, so its
 * promise neither resolves nor rejects. The cache directory runs the ops of one key one at a
 * time (KeyedMutex), so the hung op blocks every later op of that key on that peer for good.
 * Fixed by db9392c (the old proposal is rejected with ProposalLostError); kept as a regression test.
 */
import { describe, expect, it } from "vitest";
import type { LockCommand } from "../../../shared/locks/types.js";
import { encodeCommand } from "../../../shared/replica/dedup.js";
import { ProposalLostError } from "../../../shared/replica/replica.js";
import { TestCluster } from "../../replica/harness.js";

const command = (owner: string) => {
  const acquire: LockCommand = {
    type: "acquire",
    resource: "r",
    owner,
    mode: "exclusive",
    ttlMs: 10_000,
    waitMs: 0,
    now: 0,
  };
  return encodeCommand(`req-${owner}`, acquire);
};

describe("a deposed leader's pending proposal (found by the group simulator)", () => {
  it("is settled when the same peer, leading again, proposes at its index", async () => {
    const c = new TestCluster(3);
    const old = await c.elect();
    const others = [1, 2, 3].filter((id) => id !== old);
    // Cut off, it appends three proposals that nobody else will ever see.
    for (const o of others) c.cut.add(`${old}>${o}`).add(`${o}>${old}`);
    const first = c.core(old).replica.raw.raft.log.lastIndex() + 1;
    const outcomes: unknown[] = ["pending", "pending", "pending"];
    for (const [i, owner] of ["a", "b", "c"].entries()) {
      c.core(old)
        .replica.propose(command(owner))
        .then(
          () => {
            outcomes[i] = "resolved";
          },
          (e) => {
            outcomes[i] = e;
          },
        );
    }
    await c.settle();
    expect(c.core(old).replica.raw.raft.log.lastIndex()).toBe(first + 2);
    // The others elect a leader, which commits its term's first entry at `first`.
    c.peer(old).paused = true;
    await c.elect();
    // The old leader comes back and follows: its log is cut back to the new leader's.
    c.peer(old).paused = false;
    c.cut.clear();
    await c.advance(300);
    expect(c.core(old).replica.raw.raft.log.lastIndex()).toBe(first);
    // Until it leads again (the leader hands over).
    const next = c.serving() as number;
    c.core(next).replica.raw.transferLeader(old);
    await c.advance(3000, () => c.serving() === old);
    expect(c.serving()).toBe(old);
    // Its term's first entry took `first + 1`; a new proposal takes `first + 2`, the index of
    // the last of the three old ones.
    expect(c.core(old).replica.raw.raft.log.lastIndex()).toBe(first + 1);
    const fresh = await c.run(c.core(old).replica.propose(command("d")));
    expect(fresh.done).toBe(true);
    await c.advance(300);
    expect(outcomes[0]).toBeInstanceOf(ProposalLostError);
    expect(outcomes[1]).toBeInstanceOf(ProposalLostError);
    // Before the fix the third stayed "pending" for ever (its map entry was overwritten).
    expect(outcomes[2]).toBeInstanceOf(ProposalLostError);
  });
});
