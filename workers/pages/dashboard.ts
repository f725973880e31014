/**
 * `/dashboard`: the live page of the cluster (groups, locks and their wait-for graph, queues,
 * cache lines, throughput and latency, fault buttons). Its source is dashboard/ (plain TypeScript
 * and SVG); `npm run build:dashboard` bundles it into dashboard.generated.ts, and the page reads
 * its data from the stream at /dashboard/events (workers/routes/dashboard.ts).
 */
export { DASHBOARD_HTML } from "./dashboard.generated.js";
