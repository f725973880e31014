export * from "./lock-table.js";
export * from "./types.js";
export * from "./wait-for-graph.js";
