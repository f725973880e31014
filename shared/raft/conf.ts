import type { ConfState, Entry, NodeId } from "./types.js";

/**
 * Membership changes, one server at a time (Raft dissertation §4.1): a node uses the latest
 * configuration in its log, committed or not. Any two consecutive configurations differ by one
 * server, so their majorities overlap. The leader allows a new change only once the previous one
 * is committed and an entry of its own term is committed (the fix for the single-server bug).
 */
export type ConfChange =
  | { type: "addLearner"; node: NodeId }
  | { type: "promote"; node: NodeId }
  | { type: "remove"; node: NodeId };

export function encodeConfChange(cc: ConfChange): string {
  return JSON.stringify(cc);
}

export function decodeConfChange(entry: Entry): ConfChange {
  return JSON.parse(entry.data) as ConfChange;
}

/** Why a change is invalid against `conf`, or undefined when it is valid. */
export function confChangeError(conf: ConfState, cc: ConfChange): string | undefined {
  const isVoter = conf.voters.includes(cc.node);
  const isLearner = conf.learners.includes(cc.node);
  switch (cc.type) {
    case "addLearner":
      return isVoter || isLearner ? `node ${cc.node} is already a member` : undefined;
    case "promote":
      return isLearner ? undefined : `node ${cc.node} is not a learner`;
    case "remove":
      if (!isVoter && !isLearner) return `node ${cc.node} is not a member`;
      return isVoter && conf.voters.length === 1 ? "cannot remove the last voter" : undefined;
  }
}

/** The configuration after `cc`. Invalid changes leave it unchanged, so every replica agrees. */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  if (confChangeError(conf, cc) !== undefined) return conf;
  const voters = conf.voters.filter((id) => id !== cc.node);
  const learners = conf.learners.filter((id) => id !== cc.node);
  if (cc.type === "addLearner") learners.push(cc.node);
  if (cc.type === "promote") voters.push(cc.node);
  return { voters: voters.sort((a, b) => a - b), learners: learners.sort((a, b) => a - b) };
}

/** The configuration defined by `base` followed by the conf entries among `entries`. */
export function confAfter(base: ConfState, entries: readonly Entry[]): ConfState {
  let conf = base;
  for (const e of entries) if (e.type === "conf") conf = applyConfChange(conf, decodeConfChange(e));
  return conf;
}

export function sameConf(a: ConfState, b: ConfState): boolean {
  return a.voters.join() === b.voters.join() && a.learners.join() === b.learners.join();
}
