/**
 * The cluster shape (RAFT_GROUPS, RAFT_PEERS, QUEUE_SHARDS) a cluster is created with and keeps:
 * parsing the settings, the operator message for a mismatch, and the file `npm start` keeps in
 * DATA_DIR (scripts/shape-file.ts), against a temp dir.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkShapeFile, SHAPE_FILE } from "../scripts/shape-file.js";
import {
  configuredShape,
  parseStoredShape,
  peerRegions,
  queueShards,
  regionOf,
  type StoredShape,
  shapeMismatch,
} from "../shared/cluster.js";

const created: StoredShape = { groups: 3, peers: 3, queueShards: 8 };

describe("configuredShape and queueShards", () => {
  it("defaults to 3 groups of 3 peers and 8 shards per queue; blank means default", () => {
    expect(configuredShape({})).toEqual(created);
    expect(configuredShape({ RAFT_GROUPS: " ", RAFT_PEERS: "", QUEUE_SHARDS: "" })).toEqual(created);
    expect(configuredShape({ RAFT_GROUPS: "4", RAFT_PEERS: "5", QUEUE_SHARDS: "16" })).toEqual({
      groups: 4,
      peers: 5,
      queueShards: 16,
    });
  });

  it("QUEUE_SHARDS is an integer in 1..256", () => {
    expect(queueShards({ QUEUE_SHARDS: "1" })).toBe(1);
    expect(queueShards({ QUEUE_SHARDS: "256" })).toBe(256);
    for (const bad of ["0", "257", "2.5", "eight", "-1"]) {
      expect(() => queueShards({ QUEUE_SHARDS: bad })).toThrow(
        `QUEUE_SHARDS must be an integer in 1..256, got "${bad}"`,
      );
    }
    expect(() => configuredShape({ RAFT_GROUPS: "65" })).toThrow(/RAFT_GROUPS must be an integer in 1\.\.64/);
  });
});

describe("shapeMismatch", () => {
  it("is undefined when nothing changed", () => {
    expect(shapeMismatch(created, { ...created })).toBeUndefined();
  });

  it("RAFT_PEERS: names both values and points to the membership routes", () => {
    const msg = shapeMismatch(created, { ...created, peers: 5 });
    expect(msg).toBe(
      "RAFT_PEERS=5 but this cluster was created with 3 peers per group: peers are added with POST /v1/cluster/peers " +
        "and removed with DELETE /v1/cluster/peers/<id>, not by changing RAFT_PEERS (which changes every group's " +
        "genesis voters: two leaders could be elected at once). Set RAFT_PEERS=3 (see docs/operations.md).",
    );
  });

  it("RAFT_GROUPS and QUEUE_SHARDS: both values, why, and the documented procedure", () => {
    const groups = shapeMismatch(created, { ...created, groups: 4 }) as string;
    expect(groups).toMatch(/^RAFT_GROUPS=4 but this cluster was created with 3 groups: /);
    expect(groups).toContain("no online resharding");
    expect(groups).toContain("Set RAFT_GROUPS=3");
    expect(groups).toContain('"Changing the number of groups or queue shards" in docs/operations.md');
    const shards = shapeMismatch(created, { ...created, queueShards: 4 }) as string;
    expect(shards).toMatch(/^QUEUE_SHARDS=4 but this cluster was created with 8 shards per queue: /);
    expect(shards).toContain("Set QUEUE_SHARDS=8");
    expect(shards).toContain("docs/operations.md");
  });

  it("one line for each setting that disagrees, in the order groups, peers, shards", () => {
    const msg = shapeMismatch(created, { groups: 1, peers: 2, queueShards: 3 }) as string;
    const lines = msg.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.split(" ")[0])).toEqual(["RAFT_GROUPS=1", "RAFT_PEERS=2", "QUEUE_SHARDS=3"]);
    expect(shapeMismatch(created, { ...created, groups: 2, queueShards: 9 })?.split("\n")).toHaveLength(2);
  });
});

describe("parseStoredShape", () => {
  it("reads back a stored shape, ignoring fields it does not know", () => {
    expect(parseStoredShape({ ...created, note: "x" })).toEqual(created);
  });

  it.each([
    null,
    "3",
    {},
    { groups: 3, peers: 3 },
    { groups: "3", peers: 3, queueShards: 8 },
    { groups: 0, peers: 3, queueShards: 8 },
    { groups: 3, peers: 3, queueShards: 300 },
    { groups: 3, peers: 1.5, queueShards: 8 },
  ])("refuses %j", (value) => {
    expect(() => parseStoredShape(value)).toThrow(/not a stored cluster shape/);
  });
});

describe("checkShapeFile (npm start, before serving)", () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "shape-"));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("a new DATA_DIR (even one not made yet) gets the configured shape, and starts", () => {
    const dataDir = join(tempDir(), "data");
    expect(checkShapeFile(dataDir, created)).toBeUndefined();
    expect(JSON.parse(readFileSync(join(dataDir, SHAPE_FILE), "utf8"))).toEqual(created);
    // The next start with the same settings is fine, and leaves the file as it was.
    expect(checkShapeFile(dataDir, { ...created })).toBeUndefined();
    expect(JSON.parse(readFileSync(join(dataDir, SHAPE_FILE), "utf8"))).toEqual(created);
  });

  it("a start under other settings is refused with the mismatch, and the stored shape is kept", () => {
    const dataDir = tempDir();
    checkShapeFile(dataDir, created);
    const msg = checkShapeFile(dataDir, { ...created, peers: 5, queueShards: 16 });
    expect(msg).toContain("RAFT_PEERS=5 but this cluster was created with 3 peers per group");
    expect(msg).toContain("QUEUE_SHARDS=16 but this cluster was created with 8 shards per queue");
    expect(msg).toContain(join(dataDir, SHAPE_FILE));
    expect(JSON.parse(readFileSync(join(dataDir, SHAPE_FILE), "utf8"))).toEqual(created);
    expect(checkShapeFile(dataDir, created)).toBeUndefined(); // back to the original settings: fine
  });

  it("an unreadable shape file is refused, not overwritten", () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, SHAPE_FILE), "{ not json");
    expect(checkShapeFile(dataDir, created)).toMatch(/is not a valid cluster shape/);
    writeFileSync(join(dataDir, SHAPE_FILE), JSON.stringify({ groups: 3 }));
    expect(checkShapeFile(dataDir, created)).toMatch(/is not a valid cluster shape .*peers is undefined/);
    expect(readFileSync(join(dataDir, SHAPE_FILE), "utf8")).toBe(JSON.stringify({ groups: 3 }));
  });
});

describe("PEER_REGIONS: location hints per peer", () => {
  it("puts peer pK in the K-th region, round robin, and none without the setting", () => {
    const regions = peerRegions(" wnam, enam ,weur");
    expect([1, 2, 3, 4, 5].map((id) => regionOf(regions, id))).toEqual(["wnam", "enam", "weur", "wnam", "enam"]);
    expect(regionOf(peerRegions(undefined), 1)).toBeUndefined();
    expect(regionOf(peerRegions(""), 2)).toBeUndefined();
  });

  it("refuses a name that is not a location hint, naming it", () => {
    expect(() => peerRegions("wnam,us-east-1")).toThrow(/"us-east-1" is not a location hint/);
  });
});
