import { describe, expect, it } from "vitest";
import { cacheHost, formatPeers, JOINER_IDS, joinerId, normalizeUrl, parsePeers } from "../../shared/node/peers.js";
import { newNonce, ReplayGuard, SIGNATURE_WINDOW_MS, sign } from "../../shared/node/signing.js";

const SECRET = "a-cluster-secret-0123";

describe("signed node-to-node calls", () => {
  it("accepts a call once, and refuses its replay", async () => {
    const guard = new ReplayGuard();
    const now = 1_700_000_000_000;
    const header = await sign(SECRET, "/internal/raft", '{"a":1}', now, newNonce());
    expect(await guard.verify(SECRET, header, "/internal/raft", '{"a":1}', now + 10)).toEqual({ ok: true });
    const again = await guard.verify(SECRET, header, "/internal/raft", '{"a":1}', now + 20);
    expect(again.ok).toBe(false);
  });

  it("refuses another secret, path, body or time than the one signed", async () => {
    const now = 1_700_000_000_000;
    const header = await sign(SECRET, "/internal/rpc", "body", now, newNonce());
    const refused = async (secret: string, path: string, body: string, h = header) =>
      (await new ReplayGuard().verify(secret, h, path, body, now)).ok === false;
    expect(await refused("another-secret-456789", "/internal/rpc", "body")).toBe(true);
    expect(await refused(SECRET, "/internal/join", "body")).toBe(true);
    expect(await refused(SECRET, "/internal/rpc", "bodx")).toBe(true);
    const [, nonce, mac] = header.split(".");
    expect(await refused(SECRET, "/internal/rpc", "body", `${now + 1}.${nonce}.${mac}`)).toBe(true);
    expect(await refused(SECRET, "/internal/rpc", "body", "")).toBe(true);
    expect(await refused(SECRET, "/internal/rpc", "body", "garbage")).toBe(true);
  });

  it("refuses calls signed outside the window either way, and forgets nonces only after it", async () => {
    const guard = new ReplayGuard();
    const now = 1_700_000_000_000;
    for (const at of [now - SIGNATURE_WINDOW_MS - 1, now + SIGNATURE_WINDOW_MS + 1]) {
      const h = await sign(SECRET, "/p", "", at, newNonce());
      expect((await guard.verify(SECRET, h, "/p", "", now)).ok).toBe(false);
    }
    const edge = await sign(SECRET, "/p", "", now - SIGNATURE_WINDOW_MS, newNonce());
    expect((await guard.verify(SECRET, edge, "/p", "", now)).ok).toBe(true);
    // Later calls make the guard drop old nonces; the old call itself stays refused (its time is out).
    const later = await sign(SECRET, "/p", "", now + 1, newNonce());
    expect((await guard.verify(SECRET, later, "/p", "", now + 1)).ok).toBe(true);
    expect((await guard.verify(SECRET, edge, "/p", "", now + 1)).ok).toBe(false);
  });
});

describe("node addresses and ids", () => {
  it("parses PEERS, ignoring blanks, and formats it back in id order", () => {
    const peers = parsePeers(" p2=http://b:2/ , p1=http://a:1,, ");
    expect([...peers]).toEqual([
      [2, "http://b:2"],
      [1, "http://a:1"],
    ]);
    expect(formatPeers(peers)).toBe("p1=http://a:1,p2=http://b:2");
    expect(parsePeers(undefined).size).toBe(0);
  });

  it("refuses malformed PEERS with the entry named", () => {
    expect(() => parsePeers("p1")).toThrow(/p<k>=<url>/);
    expect(() => parsePeers("x1=http://a:1")).toThrow(/p<k>=<url>/);
    expect(() => parsePeers("p0=http://a:1")).toThrow(/p<k>=<url>/);
    expect(() => parsePeers("p1=ftp://a")).toThrow(/http\(s\) URL/);
    expect(() => parsePeers("p1=http://a:1,p1=http://b:1")).toThrow(/twice/);
    expect(() => normalizeUrl("not a url", "JOIN")).toThrow(/JOIN/);
  });

  it("derives joiner ids from host names: stable, in range, clear of genesis ids", () => {
    const names = Array.from({ length: 2000 }, (_, i) => `container-${i.toString(16)}`);
    for (const name of names) {
      const id = joinerId(name);
      expect(id).toBe(joinerId(name));
      expect(id).toBeGreaterThanOrEqual(JOINER_IDS.first);
      expect(id).toBeLessThanOrEqual(JOINER_IDS.last);
    }
    // Spread: 2000 names over 9900 ids collide rarely (about 200 pairs expected at random).
    expect(new Set(names.map(joinerId)).size).toBeGreaterThan(1700);
  });

  it("places cache nodes on the genesis nodes in turn", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => cacheHost(n, 3))).toEqual([1, 2, 3, 1, 2, 3, 1]);
    expect(cacheHost(4, 1)).toBe(1);
  });
});
