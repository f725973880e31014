/**
 * Cluster shape: `groups` Raft groups (g0..), each of `peers` peers (p1..) at genesis. A peer of
 * a group is one Durable Object named `g<group>-p<id>`; its Raft NodeId is the number after "p".
 */
export interface ClusterShape {
  groups: number;
  peers: number;
}

export interface ClusterSettings {
  RAFT_GROUPS?: string;
  RAFT_PEERS?: string;
}

export function clusterShape(env: ClusterSettings): ClusterShape {
  return { groups: positive(env.RAFT_GROUPS, 3, "RAFT_GROUPS"), peers: positive(env.RAFT_PEERS, 3, "RAFT_PEERS") };
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`${name} must be an integer in 1..64, got "${value}"`);
  return n;
}

export function peerName(group: number, id: number): string {
  return `g${group}-p${id}`;
}

/** "p3" → 3; undefined when it is not a peer id. */
export function parsePeerId(id: string): number | undefined {
  const m = /^p([1-9][0-9]{0,3})$/.exec(id);
  return m ? Number(m[1]) : undefined;
}

export function groupName(group: number): string {
  return `g${group}`;
}

/** The genesis voters of every group: p1..pN. */
export function genesisVoters(shape: ClusterShape): number[] {
  return Array.from({ length: shape.peers }, (_, i) => i + 1);
}
