import type { NodeId } from "./types.js";

/** The largest index acknowledged by a majority of `voters` (0 when there are none). */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[Math.floor(voters.length / 2)] as number;
}

export type VoteResult = "won" | "lost" | "pending";

/** The outcome of an election given the votes received so far. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return "won"; // nothing to decide: by convention, like etcd
  const majority = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  if (granted >= majority) return "won";
  if (granted + missing >= majority) return "pending";
  return "lost";
}

/** True when `ids` hold a majority of `voters`. */
export function isMajority(voters: readonly NodeId[], ids: ReadonlySet<NodeId>): boolean {
  let n = 0;
  for (const id of voters) if (ids.has(id)) n++;
  return n >= Math.floor(voters.length / 2) + 1;
}
