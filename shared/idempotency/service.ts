import type { GroupResult } from "../group/state.js";
import { encodeCommand } from "../replica/dedup.js";
import type { Replica } from "../replica/replica.js";
import type { IdemAnswerInput, IdemCommand, IdemResult } from "./types.js";

/** What the Worker's idempotency middleware asks of the key's group (workers/idempotency.ts). */
export type IdempotencyRequest =
  | { op: "begin"; key: string; fp: string }
  | { op: "finish"; key: string; fp: string; answer: IdemAnswerInput };

/**
 * Idempotency keys on one replica: stamps `begin` and `finish` with the leader's clock and
 * proposes them. Both are idempotent by construction (a repeated begin says `running`, a repeated
 * finish returns the first answer), so they travel with the empty request id. Pure: the Durable
 * Object supplies the replica and the clock.
 */
export class IdempotencyService {
  constructor(
    private readonly replica: Replica<GroupResult>,
    private readonly clock: () => number,
  ) {}

  async handle(req: IdempotencyRequest): Promise<IdemResult> {
    // Keys are remembered by group time, which only a serving leader can stamp (Replica.groupNow):
    // a leader's own clock, if ahead, would forget keys early.
    await this.replica.whenServing();
    const now = this.replica.groupNow(this.clock());
    const cmd: IdemCommand =
      req.op === "begin"
        ? { type: "idem-begin", key: req.key, fp: req.fp, now }
        : { type: "idem-finish", key: req.key, fp: req.fp, now, ...req.answer };
    const applied = await this.replica.propose(encodeCommand("", cmd));
    if (applied?.kind !== "idem") throw new Error("idempotency command applied as something else");
    return applied.result;
  }
}
