/**
 * Calls to other nodes (node mode): signed HTTP POSTs to `/internal/*`. A remote Raft peer or
 * cache node is a proxy with the same methods as its Durable Object stub, so the routes, the
 * group caller and the peers themselves use one interface whether the object is in this process
 * (Workers RPC) or in another (HTTP).
 */
import { newNonce, SIGNATURE_HEADER, sign } from "../../shared/node/signing.js";
import { addressOf, type NodeConfig } from "./book.js";

/** Raft messages are fire-and-forget: a node that does not answer this fast is treated as unreachable. */
export const RAFT_TIMEOUT_MS = 2_000;
/**
 * Other calls carry their own deadlines (a lock wait of up to 60 s plus a commit, a cache write
 * waiting out a lease); this only bounds a node that hangs, and must outlast all of them.
 */
export const CALL_TIMEOUT_MS = 120_000;

export class NodeUnreachableError extends Error {}

/** POSTs `body` (JSON) to `path` on node `to`, signed; the JSON answer, or throws. */
export async function callNode<T>(
  node: NodeConfig,
  to: number | string,
  path: string,
  body: unknown,
  timeoutMs = CALL_TIMEOUT_MS,
): Promise<T> {
  const base = typeof to === "string" ? to : addressOf(to);
  if (base === undefined) throw new NodeUnreachableError(`no address known for node p${to}`);
  const text = JSON.stringify(body);
  const signature = await sign(node.secret, path, text, Date.now(), newNonce());
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", [SIGNATURE_HEADER]: signature, "x-cluster-node": `p${node.self}` },
      body: text,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new NodeUnreachableError(`node ${base} unreachable: ${String(err)}`);
  }
  const answer = await res.text();
  if (!res.ok) throw new NodeUnreachableError(`node ${base}${path} answered ${res.status}: ${answer.slice(0, 300)}`);
  return JSON.parse(answer) as T;
}

/** Which object a remote call is for: a Raft peer (`g0-p2`) or a cache node (`n2`). */
export type RemoteKind = "peer" | "cache";

export interface RpcCall {
  kind: RemoteKind;
  method: string;
  args: unknown[];
}

/**
 * A stand-in for the Durable Object stub of an object on node `to`: every method call becomes
 * one signed POST. Raft messages (`receive`) go to `/internal/raft` with the short timeout.
 */
export function remoteStub<T>(node: NodeConfig, to: number, kind: RemoteKind): T {
  const target: Record<string | symbol, unknown> = {};
  return new Proxy(target, {
    get(_, method) {
      // Not a thenable, and no symbol protocol (dispose, iterators): only named methods.
      if (typeof method !== "string" || method === "then") return undefined;
      return (...args: unknown[]) =>
        method === "receive" && kind === "peer"
          ? callNode(node, to, "/internal/raft", { args }, RAFT_TIMEOUT_MS)
          : callNode(node, to, "/internal/rpc", { kind, method, args } satisfies RpcCall);
    },
  }) as T;
}
