import Foundation
import Testing
import TestSupport

/// docs/observability.md: the master's listener, on real processes.
@Suite(.serialized) struct ObservabilityProcessTests {
    @Test func metricsCountEveryRequestOfEveryWorkerByUpstreamKeyAndCode() throws {
        let (master, port) = try MasterFixture.withObservability(workers: 2, clientKeys: ["sk-one"])
        master.waitForWorkers(2)
        for _ in 0..<30 { #expect(try master.get(headers: [("Authorization", "Bearer sk-one")]).status == 200) }
        for _ in 0..<3 { #expect(try master.get(headers: [("Authorization", "Bearer wrong")]).status == 401) }
        let scrape = try Scrape(port: port)
        // A static key without an id is `-`; a refused one `none`, like a request that was not routed.
        #expect(scrape.values("fluxgate_requests_total", [#"upstream="openai""#, #"key="-""#, #"code="200""#]) == [30])
        #expect(scrape.values("fluxgate_requests_total", [#"upstream="none""#, #"key="none""#, #"code="401""#]) == [3])
        #expect(scrape.values("fluxgate_rejected_requests_total", [#"reason="unauthorized""#]) == [3])
        #expect(scrape.values("fluxgate_request_duration_seconds_count", [#"upstream="openai""#]) == [30])
        #expect(scrape.values("fluxgate_upstream_response_seconds_count", [#"upstream="openai""#]) == [30])
        #expect(scrape.values("fluxgate_overhead_seconds_count") == [30])
        #expect(scrape.values("fluxgate_workers", [#"state="serving""#]) == [2])
        #expect(scrape.values("fluxgate_build_info").first == 1)
        let lint = try promtool(["check", "metrics"], input: scrape.text)
        #expect(lint.status == 0 && lint.output.isEmpty, "promtool check metrics: \(lint.output)")
    }

    @Test func countsSurviveAKilledWorkerAndAGracefulRestart() throws {
        let (master, port) = try MasterFixture.withObservability(workers: 2)
        let first = master.waitForWorkers(2)
        for _ in 0..<20 { _ = try master.get() }
        kill(first[0], SIGKILL)
        master.waitForWorkers(2, excluding: [first[0]])
        for _ in 0..<10 { _ = try master.get() }
        try master.rewrite(workers: 3)
        #expect(try master.reload().status == 0)
        // Growing the worker count adds a worker; the two serving ones stay.
        let scrape = try #require(Scrape.wait(port: port) { $0.sum("fluxgate_workers", [#"state="serving""#]) == 3 })
        for _ in 0..<5 { _ = try master.get() }
        let after = try Scrape(port: port)
        #expect(after.sum("fluxgate_requests_total") == 35)
        #expect(after.values("fluxgate_worker_exits_total", [#"reason="crash""#]) == [1])
        #expect(after.values("fluxgate_worker_exits_total", [#"reason="replaced""#]) == [0])
        #expect(after.values("fluxgate_workers", [#"state="serving""#]) == [3])
        // The file watcher and `fluxgate reload` both reload: the second finds it unchanged.
        #expect(after.sum("fluxgate_config_reloads_total", [#"result="applied""#]) >= 1)
        #expect(scrape.values("fluxgate_config_generation") == [2])
        // Shrinking starts a new generation: the three old workers drain and count as replaced.
        try master.rewrite(workers: 1)
        #expect(try master.reload().status == 0)
        let shrunk = try #require(
            Scrape.wait(port: port, timeout: 60) {
                $0.sum("fluxgate_workers") == 1 && $0.sum("fluxgate_worker_exits_total") >= 4
            })
        let exits = shrunk.text.split(separator: "\n").filter { $0.hasPrefix("fluxgate_worker_exits_total{") }
        #expect(shrunk.values("fluxgate_worker_exits_total", [#"reason="replaced""#]) == [3], "\(exits)")
        #expect(shrunk.sum("fluxgate_requests_total") == 35)
        #expect(shrunk.values("fluxgate_workers", [#"state="serving""#]) == [1])
    }

    @Test func aReloadThatRemovesAnUpstreamRemovesItsSeries() throws {
        let (master, port) = try MasterFixture.withObservability(workers: 1)
        _ = try master.get()
        #expect(try Scrape(port: port).sum("fluxgate_requests_total", [#"upstream="openai""#]) == 1)
        // Renamed, the upstream is another one: the old name's series go.
        try MasterFixture.write(
            MasterFixture.yaml(mock: master.mock, address: "127.0.0.1:\(master.port)", workers: 1)
                .replacingOccurrences(of: "  openai:", with: "  other-provider:") + master.extraYAML,
            to: master.configPath)
        #expect(try master.reload().status == 0)
        let scrape = try Scrape(port: port)
        #expect(scrape.values("fluxgate_requests_total", [#"upstream="openai""#]).isEmpty)
        #expect(!scrape.text.contains(#"upstream="openai""#))
    }

    @Test func livezReadyzAndErrors() throws {
        let (master, port) = try MasterFixture.withObservability(workers: 2)
        master.waitForWorkers(2)
        let ready = try RawConnection(port: port).request("GET", "/readyz")
        #expect(ready.status == 200 && String(decoding: ready.body, as: UTF8.self) == "ready\n")
        #expect(try RawConnection(port: port).request("GET", "/livez").status == 200)
        let head = try RawConnection(port: port).request("HEAD", "/metrics")
        #expect(head.status == 200 && head.body.isEmpty)
        #expect(head.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(try RawConnection(port: port).request("GET", "/").status == 404)
        let post = try RawConnection(port: port).request("POST", "/metrics")
        #expect(post.status == 405 && post.header("allow") == "GET, HEAD")
    }

    @Test func aSlowOrHugeRequestDoesNotStallTheMaster() throws {
        let (master, port) = try MasterFixture.withObservability(workers: 1)
        // A client that sends half a head and waits, and one that sends more than a head may hold.
        let slow = try RawConnection(port: port)
        try slow.send("GET /metrics HTTP/1.1\r\nHost: x\r\n")
        let huge = try RawConnection(port: port)
        let oversized = try huge.request("GET", "/metrics", headers: [("X-Pad", String(repeating: "a", count: 9000))])
        #expect(oversized.status == 400)
        // Meanwhile the master answers others and its workers serve.
        #expect(try RawConnection(port: port, timeout: 5).request("GET", "/livez").status == 200)
        #expect(try master.get().status == 200)
        #expect(try master.status().stdout.contains("served 1"))
        _ = slow
    }

    @Test func statusShowsEachWorkersRequestsAndInFlight() throws {
        let (master, _) = try MasterFixture.withObservability(workers: 1)
        for _ in 0..<4 { _ = try master.get() }
        let status = try master.status().stdout
        #expect(status.contains("slot 0: pid"), "\(status)")
        #expect(status.contains("served 4 in flight 0"), "\(status)")
    }

    @Test func readyzTurnsUnavailableWhenAStopSignalArrives() throws {
        let (master, port) = try MasterFixture.withObservability(workers: 1)
        master.waitForWorkers(1)
        // A streamed response still open keeps the stop draining while /readyz is asked.
        let stream = try RawConnection(port: master.port)
        try stream.send("GET /openai/sse?n=1000&interval_ms=100 HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try stream.readHead()
        kill(master.process.pid, SIGTERM)
        var answer: RawConnection.Response?
        for _ in 0..<100 {
            answer = try? RawConnection(port: port, timeout: 5).request("GET", "/readyz")
            if answer?.status == 503 { break }
            usleep(20_000)
        }
        #expect(answer?.status == 503)
        let reason = String(decoding: answer?.body ?? [], as: UTF8.self)
        #expect(reason.hasPrefix("stopping"), "\(reason)")
    }
}
