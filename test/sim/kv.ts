import type { Entry, StateMachine } from "../../shared/raft/index.js";

/** A replicated key-value store: the simulator's state machine. Commands are JSON text. */
export type KvCommand = { op: "put"; key: string; value: string };

export class KvStateMachine implements StateMachine<string | null> {
  private data = new Map<string, string>();

  apply(entry: Entry): string | null {
    if (entry.data === "") return null; // a leader's no-op
    const cmd = JSON.parse(entry.data) as KvCommand;
    this.data.set(cmd.key, cmd.value);
    return cmd.value;
  }

  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  snapshot(): string {
    return JSON.stringify([...this.data]);
  }

  restore(data: string): void {
    this.data = new Map(data === "" ? [] : (JSON.parse(data) as [string, string][]));
  }
}
