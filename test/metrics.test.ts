import { describe, expect, it } from "vitest";
import { Registry } from "../shared/metrics/registry.js";

describe("metrics registry", () => {
  it("renders counters, gauges and histograms in the Prometheus text format", () => {
    const r = new Registry();
    r.inc("http_requests_total", "Requests.", { route: "/v1/locks", status: 200 });
    r.inc("http_requests_total", "Requests.", { route: "/v1/locks", status: 200 }, 2);
    r.set("raft_term", "Term.", { group: "g0", peer: "p1" }, 7);
    r.observe("latency_ms", "Latency.", { route: "x" }, 3, [1, 5]);
    r.observe("latency_ms", "Latency.", { route: "x" }, 9, [1, 5]);
    expect(r.render()).toBe(
      [
        "# HELP http_requests_total Requests.",
        "# TYPE http_requests_total counter",
        'http_requests_total{route="/v1/locks",status="200"} 3',
        "# HELP raft_term Term.",
        "# TYPE raft_term gauge",
        'raft_term{group="g0",peer="p1"} 7',
        "# HELP latency_ms Latency.",
        "# TYPE latency_ms histogram",
        'latency_ms_bucket{route="x",le="1"} 0',
        'latency_ms_bucket{route="x",le="5"} 1',
        'latency_ms_bucket{route="x",le="+Inf"} 2',
        'latency_ms_sum{route="x"} 12',
        'latency_ms_count{route="x"} 2',
        "",
      ].join("\n"),
    );
  });

  it("escapes label values and refuses a name used with two kinds", () => {
    const r = new Registry();
    r.set("g", "G.", { v: 'a"b\\c\nd' }, 1);
    expect(r.render()).toContain('g{v="a\\"b\\\\c\\nd"} 1');
    expect(() => r.inc("g", "G.")).toThrow(/gauge/);
  });
});
