import Foundation
import Testing
import TestSupport

/// docs/observability.md "How the counters are shared", checked by a real Prometheus scraping
/// every second: the host's sum is every request sent, across a SIGKILLed worker and a change of
/// `workers` from 2 to 3, and no counter series ever went down.
@Suite(.serialized) struct PrometheusProcessTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: PrometheusServer.executable)))
    func prometheusSeesEveryRequestAndNoCounterReset() throws {
        let (master, port) = try MasterFixture.withObservability(workers: 2, clientKeys: ["sk-a"])
        let prometheus = try PrometheusServer(scraping: port)
        let first = master.waitForWorkers(2)
        var sent = 0
        func send(_ count: Int) throws {
            for _ in 0..<count {
                #expect(try master.get(headers: [("Authorization", "Bearer sk-a")]).status == 200)
                sent += 1
            }
        }
        try send(40)
        // Prometheus has seen the first worker's counts before it dies.
        #expect(try prometheus.wait(for: "sum(fluxgate_requests_total)", toBe: Double(sent)) == Double(sent))
        kill(first[0], SIGKILL)
        master.waitForWorkers(2, excluding: [first[0]])
        try send(30)
        try master.rewrite(workers: 3, clientKeys: ["sk-a"])
        #expect(try master.reload().status == 0)
        master.waitForWorkers(3)
        try send(30)

        #expect(try prometheus.wait(for: "sum(fluxgate_requests_total)", toBe: Double(sent)) == Double(sent))
        #expect(try prometheus.query("sum(fluxgate_worker_exits_total{reason=\"crash\"})") == 1)
        // resets() drops the metric name, so each family is asked on its own.
        let counters = [
            "fluxgate_requests_total", "fluxgate_request_duration_seconds_bucket", "fluxgate_request_duration_seconds_count",
            "fluxgate_upstream_response_seconds_count", "fluxgate_overhead_seconds_bucket", "fluxgate_response_body_bytes_total",
            "fluxgate_rejected_requests_total", "fluxgate_worker_exits_total", "fluxgate_config_reloads_total",
        ]
        for name in counters {
            #expect(try prometheus.query("sum(resets(\(name)[10m:1s]))") == 0, "\(name) went down (or the query failed)")
        }
        #expect(try prometheus.query("count(up{job=\"fluxgate\"} == 1)") == 1)
    }
}
