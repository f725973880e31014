export * from "./placement.js";
export * from "./queue-table.js";
export * from "./types.js";
