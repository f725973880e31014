export * from "./conf.js";
export * from "./raft.js";
export * from "./rand.js";
export * from "./raw-node.js";
export * from "./state-machine.js";
export * from "./storage.js";
export * from "./types.js";
