/**
 * `/dashboard`: a first, minimal page of the cluster at work: every group with its leader, term,
 * commit index and each peer's role and match index, refreshed every 2 s from `/v1/cluster`.
 * (Issue 11 asks for more: locks, queues, cache nodes, a live stream and admin actions.)
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>raft-locks: cluster</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5rem; }
table { border-collapse: collapse; margin-bottom: 1rem; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
.leader { font-weight: bold; color: #0a6; } .down { color: #c33; }
</style>
<h1>Raft groups</h1>
<p id="status">loading…</p>
<div id="groups"></div>
<script>
const esc = (t) => String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;");
async function refresh() {
  try {
    const res = await fetch("/v1/cluster", { headers: { accept: "application/json" } });
    if (!res.ok) throw new Error(res.status + " " + (await res.text()));
    const { groups } = await res.json();
    document.getElementById("groups").innerHTML = groups.map((g) =>
      '<table data-group="' + esc(g.group) + '"><caption>' + esc(g.group) + ": leader " + esc(g.leader ?? "none") +
      ", term " + g.term + ", commit " + g.commitIndex + "</caption><tr><th>peer</th><th>role</th><th>match</th><th>lag</th></tr>" +
      g.peers.map((p) => '<tr class="' + esc(p.role) + '"><td>' + esc(p.id) + "</td><td>" + esc(p.role) + "</td><td>" +
        p.matchIndex + "</td><td>" + Math.max(0, g.commitIndex - p.matchIndex) + "</td></tr>").join("") + "</table>").join("");
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("status").textContent = "cannot read /v1/cluster: " + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</html>
`;
