import Foundation
import Testing
import TestSupport

/// docs/rate-limits.md "Across hosts": several masters sharing one real Redis, and what each
/// `on_unavailable` mode does when that Redis stops answering and when it dies.
@Suite(.serialized) struct RedisRateLimitProcessTests {
    static let auth = [("Authorization", "Bearer \(RateLimitProcessTests.key)")]

    static func yaml(
        mock: MockUpstream, redis: Int, limit: Int, timeoutMs: Int, mode: String, observability: Int? = nil
    ) -> String {
        let listener = observability.map { "\nobservability:\n  listen: 127.0.0.1:\($0)" } ?? ""
        return RateLimitProcessTests.yaml(mock: mock, limits: "requests_per_minute: \(limit)") + listener + """

            rate_limits:
              redis:
                url: redis://127.0.0.1:\(redis)/0
                timeout_ms: \(timeoutMs)
                on_unavailable: \(mode)
            """
    }

    @Test func threeInstancesSharingOneRedisAdmitExactlyTheLimit() throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let mock = try MockUpstream()
        // A generous timeout: on a busy test machine a late answer would fall back to this host's
        // own count, which is exact per host only.
        let yaml = Self.yaml(mock: mock, redis: redis.port, limit: 100, timeoutMs: 2000, mode: "reject")
        let proxies = try (0..<3).map { _ in try FluxgateInstance(yaml: yaml) }
        defer { proxies.forEach { $0.stop() } }
        let ports = proxies.map(\.port)
        let results = NIOLockedBox([UInt]())
        inThreads(15) { index in
            guard let connection = try? RawConnection(port: ports[index % 3], timeout: 30) else { return }
            var mine: [UInt] = []
            for _ in 0..<(1000 / 15 + (index < 1000 % 15 ? 1 : 0)) {
                guard let response = try? connection.request("GET", "/openai/v1/models", headers: Self.auth) else { break }
                mine.append(UInt(response.status))
            }
            results.withLock { $0 += mine }
        }
        let all = results.withLock { $0 }
        #expect(all.count == 1000)
        #expect(all.filter { $0 == 200 }.count == 100)
        #expect(all.filter { $0 == 429 }.count == 900)
        #expect(mock.requests.count == 100)
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "100")
    }

    /// A body that arrived with its head, or after it, while the check waited for Redis goes
    /// upstream whole once the check admits the request (with the head, in one write).
    @Test func aPostedBodyReachesTheUpstreamWholeAfterTheRedisCheck() throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(
            yaml: Self.yaml(mock: mock, redis: redis.port, limit: 100, timeoutMs: 2000, mode: "reject"))
        defer { proxy.stop() }
        let connection = try proxy.connect(timeout: 30)
        let small = Array(#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}"#.utf8)
        for body in [small, Array(MockPattern.block[0..<1000]), Array(MockPattern.block) + Array(MockPattern.block)] {
            let headers = Self.auth + [("Content-Type", "application/json")]
            let response = try connection.request("POST", "/openai/v1/chat/completions", headers: headers, body: body)
            #expect(response.status == 200)
            #expect(mock.requests.last?.bodyLength == body.count)
            let digest = SHA256Stream()
            digest.update(body)
            #expect(mock.requests.last?.bodySHA256 == digest.finalHex())
        }
        #expect(mock.requests.count == 3)
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "3")
    }

    @Test(arguments: ["local", "allow", "reject"])
    func aStoppedThenKilledRedisIsWhatOnUnavailableSaysAndLimitsResumeWithANewOne(mode: String) throws {
        var redis = try RedisServer()
        defer { redis.kill() }
        let mock = try MockUpstream()
        let timeoutMs = 200
        let metricsPort = try TestPorts.closedPort()
        let proxy = try FluxgateInstance(
            yaml: Self.yaml(
                mock: mock, redis: redis.port, limit: 5, timeoutMs: timeoutMs, mode: mode, observability: metricsPort))
        defer { proxy.stop() }
        let connection = try proxy.connect(timeout: 30)
        func send(_ count: Int) throws -> [(status: Int, seconds: Double)] {
            try (0..<count).map { _ in
                let start = Date()
                let response = try connection.request("GET", "/openai/v1/models", headers: Self.auth)
                return (response.status, Date().timeIntervalSince(start))
            }
        }
        #expect(try send(2).map(\.status) == [200, 200])
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "2")

        let expected: (Int) -> [Int] = { count in
            switch mode {
            case "allow": return Array(repeating: 200, count: count)
            case "reject": return Array(repeating: 503, count: count)
            default: return []
            }
        }
        redis.signal(SIGSTOP)
        let stopped = try send(8)
        redis.signal(SIGCONT)
        redis.kill()
        let killed = try send(4)
        if mode == "local" {
            // This host's own log takes the whole limit: 5 of the 12, then 429.
            #expect((stopped + killed).map(\.status) == Array(repeating: 200, count: 5) + Array(repeating: 429, count: 7))
        } else {
            #expect(stopped.map(\.status) == expected(8))
            #expect(killed.map(\.status) == expected(4))
        }
        // Nobody waits for a silent Redis much beyond timeout_ms (bounded loosely: a busy machine).
        let slowest = (stopped + killed).map(\.seconds).max() ?? 0
        #expect(slowest < Double(timeoutMs) / 1000 + 2, "slowest request took \(slowest) s")
        #expect(proxy.logLines(containing: "Rate-limit Redis unavailable").count == 1, "one warning, not one per request")
        let scrape = String(decoding: try RawConnection(port: metricsPort).request("GET", "/metrics").body, as: UTF8.self)
        let errors = scrape.split(separator: "\n").first { $0.hasPrefix("fluxgate_ratelimit_backend_errors_total ") }
        #expect(errors.flatMap { Int($0.split(separator: " ")[1]) } == 12, "every unavailable check counted: \(errors ?? "none")")

        // A new Redis on the same port: the workers reconnect and its (empty) log limits again.
        redis = try RedisServer(port: redis.port)
        let deadline = Date().addingTimeInterval(20)
        var admittedThroughRedis = 0
        while Date() < deadline, admittedThroughRedis == 0 {
            _ = try send(1)
            admittedThroughRedis = Int(try redis.cli("LLEN", "fluxgate:admissions:k:team-a")) ?? 0
            if admittedThroughRedis == 0 { usleep(100_000) }
        }
        #expect(admittedThroughRedis == 1)
        let resumed = try send(6)
        #expect(resumed.filter { $0.status == 200 }.count == 4, "\(resumed.map(\.status))")
        #expect(resumed.last?.status == 429)
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "5")
    }
}
