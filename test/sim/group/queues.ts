/**
 * The queue history and its checks. Events come from the simulated Worker (what each group
 * answered, and when) and from the clients (what they saw, and when they sent what). Sound under
 * at-least-once: redelivery after a visibility timeout is fine; a 503 may or may not have stored
 * a part; a lost reply tells nothing.
 *
 * - acked means gone: once a group answered that every receipt of an ack was acked, no receive
 *   sent afterwards delivers one of those message ids;
 * - nothing acknowledged is lost: every id a group acknowledged storing (an `enqueued` part) is
 *   delivered at least once by the end (the run drains every queue after the faults heal);
 * - stored once: no id is delivered from two different copies (group, queue, shard, seq);
 * - per-key order: the messages of one key that one producer sent one batch after another (each
 *   answered 200 before the next was sent) are first delivered in that order;
 * - bodies: every delivery carries exactly the JSON text that was sent;
 * - fresh receives: a receive that got nothing from a shard, from a leader that had not applied
 *   the first entry of its term, although a message of that shard was deliverable in what that
 *   leader must reflect and its enqueue had been acknowledged before the receive was sent
 *   (replicas.ts records such leaders; this checks the receives they answered).
 */

import { parseReceipt } from "../../../shared/queue/placement.js";
import type { Delivery } from "../../../shared/queue/types.js";
import type { StaleSuspect } from "./replicas.js";

interface Sent {
  body: string;
  key: string | undefined;
}

export class QueueChecker {
  private readonly sent = new Map<string, Sent>();
  /** id → when a group first acknowledged storing it. */
  private readonly acknowledged = new Map<string, number>();
  /** id → when an ack of it was first confirmed. */
  private readonly ackedAt = new Map<string, number>();
  /** id → when a client first saw it delivered. */
  private readonly firstDelivery = new Map<string, number>();
  /** id → the copies it was delivered from. */
  private readonly copies = new Map<string, Set<string>>();
  /** producer/queue/key → ids in the order they were acknowledged (batches sent one after another). */
  private readonly keyOrder = new Map<string, string[]>();
  private deliveredAcknowledged = 0;
  counts = { acknowledged: 0, deliveries: 0, redeliveries: 0, acked: 0, staleChecks: 0 };
  private reported = new Set<string>();

  constructor(private readonly violation: (what: string) => void) {}

  private report(kind: string, what: string): void {
    // At most a few reports per kind: one broken rule tends to break it many times.
    const n = [...this.reported].filter((k) => k.startsWith(`${kind}#`)).length;
    if (n >= 3) return;
    this.reported.add(`${kind}#${n}`);
    this.violation(what);
  }

  /** The Worker planned a message: its id and what it carries. */
  planned(queue: string, id: string, body: string, key: string | undefined): void {
    if (!this.sent.has(`${queue}\0${id}`)) this.sent.set(`${queue}\0${id}`, { body, key });
  }

  /** A group answered an enqueue part: these ids are stored. */
  stored(queue: string, ids: readonly string[], at: number): void {
    for (const id of ids) {
      const k = `${queue}\0${id}`;
      if (!this.acknowledged.has(k)) {
        this.acknowledged.set(k, at);
        this.counts.acknowledged++;
        if (this.firstDelivery.has(k)) this.deliveredAcknowledged++;
      }
    }
  }

  /** A producer's batch was answered 200: its keyed messages join their key's order. */
  batchAccepted(producer: string, queue: string, messages: readonly { id: string; key?: string }[]): void {
    for (const m of messages) {
      if (m.key === undefined) continue;
      const k = `${producer}\0${queue}\0${m.key}`;
      const list = this.keyOrder.get(k) ?? [];
      if (!list.includes(m.id)) list.push(m.id);
      this.keyOrder.set(k, list);
    }
  }

  /** A client saw these deliveries from `group`, of a receive it sent at `sentAt`. */
  delivered(queue: string, group: number, deliveries: readonly Delivery[], sentAt: number, at: number): void {
    for (const d of deliveries) {
      const k = `${queue}\0${d.id}`;
      this.counts.deliveries++;
      const sent = this.sent.get(k);
      if (sent === undefined) this.report("unknown", `queue ${queue}: delivered id ${d.id} that nobody sent`);
      else if (sent.body !== d.body) {
        this.report(
          "body",
          `body: ${queue} ${d.id} was sent as ${JSON.stringify(sent.body).slice(0, 120)} and delivered as ${JSON.stringify(d.body).slice(0, 120)} (from g${group})`,
        );
      }
      const acked = this.ackedAt.get(k);
      if (acked !== undefined && acked < sentAt) {
        this.report(
          "acked",
          `acked message delivered again: ${queue} ${d.id} was acked at ${acked} and delivered by a receive sent at ${sentAt} (g${group} receipt ${d.receipt})`,
        );
      }
      const r = parseReceipt(d.receipt);
      const copy = `g${group}/${r?.shard}/${r?.seq}`;
      const set = this.copies.get(k) ?? new Set();
      set.add(copy);
      this.copies.set(k, set);
      if (this.firstDelivery.has(k)) this.counts.redeliveries++;
      else {
        this.firstDelivery.set(k, at);
        if (this.acknowledged.has(k)) this.deliveredAcknowledged++;
      }
    }
  }

  /** A group answered that `acked` of these receipts (of these ids) were acked. */
  ackAnswered(queue: string, receipts: readonly { id: string; receipt: string }[], acked: number, at: number): void {
    const distinct = new Map(receipts.map((r) => [r.receipt, r.id]));
    if (acked !== distinct.size) return; // which ones is unknown
    for (const id of distinct.values()) {
      const k = `${queue}\0${id}`;
      if (!this.ackedAt.has(k)) {
        this.ackedAt.set(k, at);
        this.counts.acked++;
      }
    }
  }

  /**
   * The receive `requestId`, sent to `group` at `sentAt`, was answered by `peer` at `at` with
   * `deliveries`. A shard it got nothing from, that this peer skipped as a young leader while
   * serving it, without committing a receive there, is checked against the suspect's messages.
   */
  receiveAnswered(
    queue: string,
    group: number,
    peer: string | undefined,
    requestId: string,
    deliveries: readonly Delivery[],
    sentAt: number,
    suspects: readonly StaleSuspect[],
    committed: (id: string) => boolean,
  ): void {
    const served = new Set(deliveries.map((d) => parseReceipt(d.receipt)?.shard));
    for (const s of suspects) {
      if (s.group !== group || s.requestId !== requestId || s.peer !== peer || s.queue !== queue) continue;
      if (served.has(s.shard) || committed(`${requestId}:${s.shard}`)) continue;
      this.counts.staleChecks++;
      const missed = s.ids.filter((id) => {
        const t = this.acknowledged.get(`${queue}\0${id}`);
        return t !== undefined && t < sentAt;
      });
      if (missed.length === 0) continue;
      this.report(
        "stale",
        `stale receive: ${queue} shard ${s.shard} answered empty by ${s.peer} (leader of term ${s.term}, applied ${s.applied} < ${s.firstOfTerm}, the first entry of its term) to a receive sent at ${sentAt}, although ${missed.slice(0, 3).join(", ")} (acknowledged ${this.acknowledged.get(`${queue}\0${missed[0]}`)}) was deliverable`,
      );
    }
  }

  /** How many acknowledged ids have not been delivered yet (the drain runs until none). */
  get pending(): number {
    return this.acknowledged.size - this.deliveredAcknowledged;
  }

  /** Ids acknowledged as stored that have not been delivered yet. */
  undelivered(): string[] {
    const out: string[] = [];
    for (const k of this.acknowledged.keys()) if (!this.firstDelivery.has(k)) out.push(k.replace("\0", " "));
    return out;
  }

  /** The checks on the whole history, after the drain. */
  finish(): void {
    const lost = this.undelivered();
    if (lost.length > 0) {
      this.report(
        "lost",
        `lost: ${lost.length} acknowledged message(s) never delivered, e.g. ${lost.slice(0, 5).join(", ")}`,
      );
    }
    for (const [k, set] of this.copies) {
      if (set.size > 1) {
        this.report("twice", `stored twice: ${k.replace("\0", " ")} delivered from ${[...set].join(" and ")}`);
      }
    }
    for (const [k, ids] of this.keyOrder) {
      const [producer, queue, key] = k.split("\0");
      for (let i = 1; i < ids.length; i++) {
        const a = this.firstDelivery.get(`${queue}\0${ids[i - 1]}`);
        const b = this.firstDelivery.get(`${queue}\0${ids[i]}`);
        if (a === undefined || b === undefined || a <= b) continue;
        this.report(
          "order",
          `per-key order: ${queue} key ${key} of ${producer}: ${ids[i]} first delivered at ${b}, before ${ids[i - 1]} (sent earlier) at ${a}`,
        );
      }
    }
  }
}
