/**
 * Workers RPC between the Worker and a peer, or from one peer to another (a forwarded request):
 * the request travels, the callee serves it, the answer travels back. Either leg can be lost or
 * cut; the caller then gets an error (as a failed RPC), never a silent hang. If the callee
 * crashes while serving, the caller gets an error too. The callee's part waits while it is
 * paused; the caller's part belongs to the caller (a crashed caller never hears back).
 */
import type { Actor, World } from "./world.js";

/** One direction of a link: how long a hop takes, and whether this one is lost or cut. */
export interface Leg {
  delay(): number;
  lost(): boolean;
}

/** A failed call, as the Worker sees an exception from a Durable Object stub. */
export class RpcError extends Error {}

/** The callee side: it fails the calls it is serving when it crashes. */
export interface Callee extends Actor {
  serving: Set<(e: Error) => void>;
}

export function rpc<T>(
  world: World,
  out: Leg,
  back: Leg,
  callee: Callee,
  work: () => Promise<T>,
  caller?: Actor,
): Promise<T> {
  // The caller's life when it called: a caller that crashed since never hears back, even when the
  // answer sets off after its restart.
  const life = caller?.life;
  return new Promise<T>((resolve, reject) => {
    const answer = (fn: () => void) =>
      world.after(back.delay(), () => (caller !== undefined && caller.life !== life ? undefined : fn()), caller);
    if (out.lost()) {
      world.after(out.delay() + back.delay(), () => reject(new RpcError("request lost")), caller);
      return;
    }
    world.after(
      out.delay(),
      () => {
        let settled = false;
        const fail = (e: Error) => {
          if (settled) return;
          settled = true;
          callee.serving.delete(fail);
          answer(() => reject(e));
        };
        callee.serving.add(fail);
        work().then(
          (value) => {
            if (settled) return;
            settled = true;
            callee.serving.delete(fail);
            if (back.lost()) answer(() => reject(new RpcError("reply lost")));
            else answer(() => resolve(value));
          },
          (e: unknown) => fail(e instanceof Error ? e : new Error(String(e))),
        );
      },
      callee,
      true,
    );
  });
}
