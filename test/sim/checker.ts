import type { ConfState, Entry, NodeId, Raft } from "../../shared/raft/index.js";
import type { MemoryStorage } from "../../shared/raft/storage.js";

/**
 * The Raft safety properties (Raft paper, Figure 3), checked by the harness after every step
 * against what the nodes hold. Violations are collected as readable strings.
 */
export class SafetyChecker {
  readonly violations: string[] = [];
  /** Election safety: the one leader of each term. */
  private leaders = new Map<number, NodeId>();
  /** Log matching: every (index, term) ever appended, with its data and the term before it. */
  private appended = new Map<string, { data: string; prevTerm: number }>();
  /** State machine safety: the entry applied at each index, by whichever node applied it first. */
  readonly committed = new Map<number, Entry>();
  maxCommitted = 0;
  /** The configuration each leader had at the previous step, with its term. */
  private leaderConf = new Map<NodeId, { term: number; conf: ConfState }>();

  private fail(what: string): void {
    if (this.violations.length < 20) this.violations.push(what);
  }

  /** Entries about to be persisted by `node`: same (index, term) ⇒ same data and same predecessor. */
  onAppend(node: NodeId, entries: readonly Entry[], prevTerm: number): void {
    let prev = prevTerm;
    for (const e of entries) {
      const key = `${e.index}:${e.term}`;
      const seen = this.appended.get(key);
      if (seen === undefined) this.appended.set(key, { data: e.data, prevTerm: prev });
      else if (seen.data !== e.data || seen.prevTerm !== prev) {
        this.fail(`log matching: n${node} has a different entry at index ${e.index} term ${e.term}`);
      }
      prev = e.term;
    }
  }

  /** An entry applied by `node`: no two nodes apply different entries at one index. */
  onApply(node: NodeId, e: Entry): void {
    const first = this.committed.get(e.index);
    if (first === undefined) {
      this.committed.set(e.index, e);
      this.maxCommitted = Math.max(this.maxCommitted, e.index);
    } else if (first.term !== e.term || first.data !== e.data) {
      this.fail(
        `state machine safety: n${node} applied ${e.term}/${e.data} at ${e.index}, another applied ${first.term}/${first.data}`,
      );
    }
  }

  /** Called for every node that is leader after a step. Returns true for a newly seen term. */
  onLeader(raft: Raft): boolean {
    const prior = this.leaders.get(raft.term);
    if (prior === undefined) {
      this.leaders.set(raft.term, raft.id);
      this.checkLeaderCompleteness(raft);
    } else if (prior !== raft.id) {
      this.fail(`election safety: n${prior} and n${raft.id} are both leaders of term ${raft.term}`);
    }
    this.checkMembership(raft);
    return prior === undefined;
  }

  /** A new leader's log holds every entry committed so far (Raft §5.4). */
  private checkLeaderCompleteness(raft: Raft): void {
    const log = raft.log;
    for (let i = log.firstIndex(); i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (c !== undefined && log.term(i) !== c.term) {
        this.fail(`leader completeness: n${raft.id}, leader of term ${raft.term}, lacks committed entry ${i}`);
        return;
      }
    }
  }

  /**
   * One server at a time: a leader has at most one uncommitted conf entry, and each of its
   * configuration changes keeps old and new majorities overlapping (no two disjoint majorities).
   */
  private checkMembership(raft: Raft): void {
    const log = raft.log;
    let pending = 0;
    for (const e of log.slice(log.committed + 1, log.lastIndex() + 1)) if (e.type === "conf") pending++;
    if (pending > 1) this.fail(`membership: leader n${raft.id} has ${pending} uncommitted conf changes`);
    const before = this.leaderConf.get(raft.id);
    if (before?.term === raft.term && !majoritiesOverlap(before.conf.voters, raft.conf.voters)) {
      this.fail(`membership: [${before.conf.voters}] → [${raft.conf.voters}] allows two disjoint majorities`);
    }
    this.leaderConf.set(raft.id, { term: raft.term, conf: raft.conf });
  }

  /**
   * Committed entries survive any crash: the nodes holding the newest committed entry durably
   * (in storage, not memory) intersect every majority of the leader's configuration.
   */
  checkDurability(leader: Raft, storages: ReadonlyMap<NodeId, MemoryStorage>): void {
    const c = this.committed.get(this.maxCommitted);
    if (c === undefined) return;
    const voters = leader.conf.voters;
    let holders = 0;
    for (const id of voters) {
      const s = storages.get(id);
      if (s === undefined) continue;
      const snapIndex = s.snapshot().metadata.index;
      if (snapIndex >= c.index || (c.index <= s.lastIndex() && s.term(c.index) === c.term)) holders++;
    }
    const quorum = Math.floor(voters.length / 2) + 1;
    if (holders < voters.length - quorum + 1) {
      this.fail(`durability: committed entry ${c.index} is durable on only ${holders} of [${voters}]`);
    }
  }
}

/** True when every majority of `a` shares a member with every majority of `b`. */
export function majoritiesOverlap(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  const inB = new Set(b);
  const both = a.filter((id) => inB.has(id)).length;
  const onlyA = a.length - both;
  const onlyB = b.length - both;
  const qa = Math.floor(a.length / 2) + 1;
  const qb = Math.floor(b.length / 2) + 1;
  // Smallest possible overlap: each majority takes members outside the other set first.
  return Math.max(0, qa - onlyA) + Math.max(0, qb - onlyB) > both;
}
