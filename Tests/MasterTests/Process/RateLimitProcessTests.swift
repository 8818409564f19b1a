import Foundation
import Testing
import TestSupport

/// docs/rate-limits.md on one host: the real master and its workers in front of the mock; the
/// limits are counted in the master's shared segment, whichever worker a connection lands on.
@Suite(.serialized) struct RateLimitProcessTests {
    static let key = "sk-client-team-a"

    static func yaml(mock: MockUpstream, port: Int = 0, workers: Int = 2, limits: String) -> String {
        """
        version: 1
        server:
          bind_address: "127.0.0.1:\(port)"
          workers: \(workers)
        api_keys:
          static:
            - id: team-a
              key: "\(key)"
              limits: { \(limits) }
        upstreams:
          openai:
            request_path: "/openai"
            target_url: "\(mock.baseURL)"
            api_key: "sk-test"
        """
    }

    /// Sends `total` requests over `connections` keep-alive connections at once; the statuses,
    /// and the `retry-after` of each 429.
    static func burst(
        port: Int, connections: Int, total: Int, target: String = "/openai/v1/models", token: String = key
    ) -> [(UInt, String?)] {
        let results = NIOLockedBox([(UInt, String?)]())
        inThreads(connections) { index in
            let share = total / connections + (index < total % connections ? 1 : 0)
            guard let connection = try? RawConnection(port: port, timeout: 30) else { return }
            var mine: [(UInt, String?)] = []
            for _ in 0..<share {
                guard
                    let response = try? connection.request(
                        "GET", target, headers: [("Authorization", "Bearer \(token)")])
                else { break }
                mine.append((UInt(response.status), response.header("retry-after")))
            }
            results.withLock { $0 += mine }
        }
        return results.withLock { $0 }
    }

    @Test func twoWorkersAdmitExactlyTheLimitOfABurst() throws {
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(yaml: Self.yaml(mock: mock, limits: "requests_per_minute: 100"))
        defer { proxy.stop() }
        #expect(proxy.workerPIDs.count == 2)
        let results = Self.burst(port: proxy.port, connections: 16, total: 1000)
        #expect(results.count == 1000, "every request was answered")
        #expect(results.filter { $0.0 == 200 }.count == 100)
        let refused = results.filter { $0.0 == 429 }
        #expect(refused.count == 900)
        #expect(refused.allSatisfy { ($0.1.flatMap { Int($0) } ?? 0) >= 1 }, "each 429 says when to retry")
        #expect(mock.requests.count == 100, "the upstream saw only the admitted requests")
    }

    @Test func theRefusalNamesTheLimitAndItsReset() throws {
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(yaml: Self.yaml(mock: mock, limits: "requests_per_minute: 2"))
        defer { proxy.stop() }
        let connection = try proxy.connect()
        let auth = [("Authorization", "Bearer \(Self.key)")]
        #expect(try connection.request("GET", "/openai/v1/models", headers: auth).status == 200)
        let second = try connection.request("GET", "/openai/v1/models", headers: auth)
        #expect(second.status == 200)
        #expect(second.header("x-ratelimit-limit-requests") == nil, "admitted responses carry the provider's headers only")
        let refused = try connection.request("GET", "/openai/v1/models", headers: auth)
        #expect(refused.status == 429)
        let body = String(decoding: refused.body, as: UTF8.self)
        #expect(body.contains("\"type\":\"rate_limit_exceeded\""))
        #expect(body.contains("\"code\":\"requests\""))
        #expect(!body.contains("team-a") && !body.contains(Self.key), "never names the key")
        #expect(refused.header("x-ratelimit-limit-requests") == "2")
        #expect(refused.header("x-ratelimit-remaining-requests") == "0")
        let retryAfter = try #require(refused.header("retry-after").flatMap { Int($0) })
        #expect((1...60).contains(retryAfter))
        #expect(refused.header("x-ratelimit-reset-requests")?.hasSuffix("s") == true)
        #expect(proxy.waitForLogLines(containing: "status=429", count: 1).count == 1, "the request line says 429")
    }

    @Test func tokensPerMinuteReservesTheBodysMaxTokensOrTheDefault() throws {
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(
            yaml: Self.yaml(mock: mock, limits: "tokens_per_minute: 100, default_reserved_tokens: 30"))
        defer { proxy.stop() }
        let connection = try proxy.connect()
        let auth = [("Authorization", "Bearer \(Self.key)"), ("Content-Type", "application/json")]
        // The mock's /upload reports no usage: every reservation stands (settling is tested below).
        func post(_ body: String) throws -> RawConnection.Response {
            try connection.request("POST", "/openai/v1/upload", headers: auth, body: Array(body.utf8))
        }
        #expect(try post(#"{"model":"m","messages":[],"max_tokens":60}"#).status == 200)
        let refused = try post(#"{"model":"m","max_completion_tokens":50}"#)
        #expect(refused.status == 429)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("\"code\":\"tokens\""))
        #expect(refused.header("x-ratelimit-limit-tokens") == "100")
        #expect(try post(#"{"model":"m","max_tokens":10}"#).status == 200)
        // No max_tokens: default_reserved_tokens (30) fits in the 30 left, then nothing does.
        #expect(try post(#"{"model":"m"}"#).status == 200)
        #expect(try post(#"{"model":"m","max_tokens":1}"#).status == 429)
        #expect(mock.requests.count == 3)
        #expect(mock.requests.allSatisfy { $0.bodyLength > 0 }, "the peeked bodies were forwarded whole")
    }

    /// The mock's chat completion reports 10 tokens (5 in, 5 out): a reservation of 90 settles to
    /// 10 when the response ends, which frees room a second 90 could not have had.
    @Test func settlingToTheReportedUsageFreesWhatTheReservationOverEstimated() throws {
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(yaml: Self.yaml(mock: mock, limits: "tokens_per_minute: 100"))
        defer { proxy.stop() }
        let connection = try proxy.connect()
        let auth = [("Authorization", "Bearer \(Self.key)"), ("Content-Type", "application/json")]
        func post(_ maxTokens: Int) throws -> Int {
            try connection.request(
                "POST", "/openai/v1/chat/completions", headers: auth,
                body: Array(#"{"model":"m","messages":[],"max_tokens":\#(maxTokens)}"#.utf8)
            ).status
        }
        #expect(try post(90) == 200)
        #expect(try post(90) == 200, "the first settled to 10: 10 + 90 fits")
        #expect(try post(90) == 429, "10 + 10 + 90 does not")
        #expect(try post(80) == 200)
    }

    @Test func maxInFlightHoldsAcrossWorkersWithASlowUpstream() throws {
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(yaml: Self.yaml(mock: mock, limits: "max_in_flight: 4"))
        defer { proxy.stop() }
        let connections = NIOLockedBox(try (0..<20).map { _ in try RawConnection(port: proxy.port, timeout: 30) })
        let statuses = NIOLockedBox([UInt]())
        inThreads(20) { index in
            let connection = connections.withLock { $0[index] }
            let response = try? connection.request(
                "GET", "/openai/delay-headers?ms=1500", headers: [("Authorization", "Bearer \(Self.key)")])
            statuses.withLock { $0.append(UInt(response?.status ?? 0)) }
        }
        let all = statuses.withLock { $0 }
        #expect(all.count == 20 && all.allSatisfy { $0 == 200 || $0 == 429 }, "\(all)")
        #expect(mock.maxDelayedInFlight <= 4, "never more than 4 at the upstream at once")
        #expect(all.filter { $0 == 200 }.count >= 1)
        #expect(all.filter { $0 == 429 }.count >= 1)
        // Every place was given back when its request ended.
        let after = try connections.withLock { $0[0] }.request(
            "GET", "/openai/delay-headers?ms=10", headers: [("Authorization", "Bearer \(Self.key)")])
        #expect(after.status == 200)
    }

    @Test func aReloadRaisingTheLimitKeepsTheCountAndAWorkerCrashLosesNothing() throws {
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(yaml: Self.yaml(mock: mock, limits: "requests_per_minute: 5"))
        defer { proxy.stop() }
        var first = Self.burst(port: proxy.port, connections: 2, total: 7)
        #expect(first.filter { $0.0 == 200 }.count == 5)
        try Self.yaml(mock: mock, port: proxy.port, limits: "requests_per_minute: 8")
            .write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
        #expect(try proxy.reload().status == 0)
        // Three more fit under the raised limit, not eight: the five of this minute still count.
        first = Self.burst(port: proxy.port, connections: 2, total: 6)
        #expect(first.filter { $0.0 == 200 }.count == 3)
        // A killed worker's replacement reads the same counts.
        let victim = try #require(proxy.workerPIDs.first)
        kill(victim, SIGKILL)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, proxy.workerPIDs.filter({ $0 != victim }).count < 2 { usleep(50_000) }
        usleep(300_000)
        #expect(Self.burst(port: proxy.port, connections: 4, total: 8).allSatisfy { $0.0 == 429 })
    }
}

/// Runs `body(0..<count)` on `count` threads at once (`concurrentPerform` runs only as many at
/// once as there are CPUs) and returns when all have.
func inThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        Thread {
            body(index)
            group.leave()
        }.start()
    }
    group.wait()
}

/// A value shared by the threads of `inThreads`.
final class NIOLockedBox<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
