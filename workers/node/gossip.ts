/** Address gossip between nodes (node mode): what `/internal/hello` carries, and one round of it. */
import { normalizeUrl } from "../../shared/node/peers.js";
import { addressOf, knownNodes, learn, type NodeConfig, setAddress } from "./book.js";
import { callNode } from "./client.js";

export type Hello = { nodes: [number, string][] };

/** Says hello to every other node this one knows, merging what they know (the launcher calls it every few seconds). */
export async function gossip(node: NodeConfig): Promise<void> {
  const others = knownNodes().filter(([id]) => id !== node.self);
  await Promise.all(
    others.map(async ([id]) => {
      try {
        const reply = await callNode<Hello>(node, id, "/internal/hello", { nodes: knownNodes() }, 2000);
        learn(node.self, validEntries(reply.nodes));
      } catch {
        // a node that is down hears from us next round
      }
    }),
  );
}

/**
 * Binds node `id` to `url` and tells every node (before the groups add it as a learner, their
 * leaders must be able to reach it). Undefined when done; why not when `id` is another node's.
 */
export async function announce(node: NodeConfig, id: number, url: string): Promise<string | undefined> {
  const known = addressOf(id);
  if (known !== undefined && known !== url) return `p${id} is already the node at ${known}; give this node another id`;
  setAddress(id, url);
  await gossip(node);
  return undefined;
}

/** The well-formed `[id, url]` entries of what another node sent. */
export function validEntries(nodes: unknown): [number, string][] {
  if (!Array.isArray(nodes)) return [];
  const out: [number, string][] = [];
  for (const entry of nodes) {
    if (!Array.isArray(entry) || !Number.isInteger(entry[0]) || typeof entry[1] !== "string") continue;
    try {
      out.push([entry[0] as number, normalizeUrl(entry[1], "address")]);
    } catch {
      // not an address: skip it
    }
  }
  return out;
}
