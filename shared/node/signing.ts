/**
 * Node-to-node calls are signed with an HMAC-SHA256 of `CLUSTER_SECRET` over the time, a nonce,
 * the path and the body, and sent as `x-cluster-signature: <ms>.<nonce>.<hex>`. The receiver
 * refuses a wrong signature, a time more than `SIGNATURE_WINDOW_MS` off its own clock, and a
 * nonce it has already seen within that window (a replayed call). Web Crypto only, so the same
 * code runs in workerd and in the Node launcher.
 */

export const SIGNATURE_HEADER = "x-cluster-signature";

/** How far a signed call's time may be from the receiver's clock (either way). */
export const SIGNATURE_WINDOW_MS = 30_000;

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (key === undefined) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keys.set(secret, key);
  }
  return key;
}

function toHex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function signed(at: number, nonce: string, path: string, body: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(encoder.encode(`${at}\n${nonce}\n${path}\n${body}`));
}

/** The header value for a call to `path` with `body`, made at `at` (ms since the epoch). */
export async function sign(secret: string, path: string, body: string, at: number, nonce: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await keyFor(secret), signed(at, nonce, path, body));
  return `${at}.${nonce}.${toHex(mac)}`;
}

export function newNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(12)).buffer);
}

export type Verdict = { ok: true } | { ok: false; reason: string };

/**
 * Remembers the nonces of accepted calls until they fall out of the window, so each signed call
 * is accepted once. Memory is bounded by the calls of one window.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>();

  constructor(private readonly windowMs = SIGNATURE_WINDOW_MS) {}

  async verify(secret: string, header: string | undefined, path: string, body: string, now: number): Promise<Verdict> {
    const m = /^(\d{1,15})\.([0-9a-f]{8,64})\.([0-9a-f]{64})$/.exec(header ?? "");
    if (m === null) return { ok: false, reason: `missing or malformed ${SIGNATURE_HEADER}` };
    const at = Number(m[1]);
    const nonce = m[2] as string;
    if (Math.abs(now - at) > this.windowMs) {
      return {
        ok: false,
        reason: `signed at ${at}, ${now - at} ms from this node's clock (window ${this.windowMs} ms)`,
      };
    }
    const mac = fromHex(m[3] as string) as Uint8Array<ArrayBuffer>;
    const valid = await crypto.subtle.verify("HMAC", await keyFor(secret), mac, signed(at, nonce, path, body));
    if (!valid) return { ok: false, reason: "bad signature (is CLUSTER_SECRET the same on every node?)" };
    this.forgetOld(now);
    if (this.seen.has(nonce)) return { ok: false, reason: "replayed call (nonce already used)" };
    this.seen.set(nonce, at);
    return { ok: true };
  }

  private forgetOld(now: number): void {
    for (const [nonce, at] of this.seen) {
      // Insertion order is roughly time order; stop at the first one still inside the window.
      if (Math.abs(now - at) <= this.windowMs) break;
      this.seen.delete(nonce);
    }
  }
}
