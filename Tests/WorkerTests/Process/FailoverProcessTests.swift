import Foundation
import Testing
import TestSupport

/// docs/routing-and-forwarding.md "Several targets", "Retries and failover", "Target health" and
/// "Truncated responses", against the real binaries: two mock targets, one of them failing.
@Suite(.serialized) struct FailoverProcessTests {
    static let clientKey = "client-key-failover-0123456789abcdef"

    /// A proxy with upstream `llm` on `/llm` over `targets` (`(url, key)`), and `extra` lines
    /// under the upstream.
    static func proxy(targets: [(String, String)], extra: String = "", more: String = "", workers: Int = 2) throws -> FluxgateInstance {
        var yaml = "version: 1\nserver:\n  bind_address: \"127.0.0.1:0\"\n  workers: \(workers)\nupstreams:\n"
        yaml += "  llm:\n    request_path: /llm\n    targets:\n"
        for (url, key) in targets { yaml += "      - target_url: \"\(url)\"\n        api_key: \"\(key)\"\n" }
        yaml += extra.split(separator: "\n").map { "    \($0)\n" }.joined()
        yaml += more
        yaml += "api_keys:\n  static:\n    - id: t\n      key: \"\(clientKey)\"\n"
        return try FluxgateInstance(yaml: yaml, environment: ["FLUXGATE_LOG": "trace"])
    }

    static let auth = ("Authorization", "Bearer \(clientKey)")
    static let chat = Array(#"{"model":"gpt-mock","messages":[{"role":"user","content":"hi"}]}"#.utf8)
    static let chatStream = Array(#"{"model":"gpt-mock","stream":true,"messages":[{"role":"user","content":"hi"}]}"#.utf8)

    /// `rounds` requests on each of 6 clients at once: half keep one connection, half open one per
    /// request; JSON and SSE alternate. Returns the statuses that were not a complete 200.
    static func load(_ proxy: FluxgateInstance, rounds: Int) -> [String] {
        let failures = NIOLockedList()
        DispatchQueue.concurrentPerform(iterations: 6) { client in
            var kept: RawConnection?
            for round in 0..<rounds {
                do {
                    let connection = try (client % 2 == 0 ? kept ?? proxy.connect() : proxy.connect())
                    if client % 2 == 0 { kept = connection }
                    let stream = (client + round) % 2 == 0
                    let response = try connection.request(
                        "POST", "/llm/v1/chat/completions", headers: [auth, ("Content-Type", "application/json")],
                        body: stream ? chatStream : chat)
                    let complete = stream ? response.bodyText.contains("[DONE]") : response.bodyText.contains("Hello from the mock.")
                    if response.status != 200 || !complete { failures.append("\(response.status) \(response.bodyText.prefix(120))") }
                } catch {
                    failures.append("\(error)")
                    kept = nil
                }
            }
        }
        return failures.items
    }

    /// The case every failing kind shares: under load no client request fails, and once the
    /// failing target is out (after `failures: 2`), no worker sends it anything more.
    static func failoverHolds(failure: MockUpstream.Failure?, refused: Bool = false, on: String = "", timeout: String = "") throws {
        let healthy = try MockUpstream()
        let failing = try MockUpstream()
        defer {
            healthy.shutdown()
            failing.shutdown()
        }
        failing.failure = failure
        let failingURL = refused ? "http://127.0.0.1:\(try TestPorts.closedPort())" : failing.baseURL
        let proxy = try Self.proxy(
            targets: [(failingURL, "sk-a"), (healthy.baseURL, "sk-b")],
            extra: "retry:\n  \(on)\n  \(timeout)\nhealth:\n  failures: 2\n  cooldown_ms: 60000\n")
        defer { _ = proxy.stop() }
        #expect(load(proxy, rounds: 8) == [])
        let sentBefore = failing.requests.count
        // Every worker now skips it: new connections land on both workers.
        #expect(load(proxy, rounds: 4) == [])
        #expect(failing.requests.count == sentBefore, "the failing target got requests after it was taken out")
        #expect(healthy.requests.count >= 72)
    }

    @Test func aTargetRefusingConnections() throws {
        try Self.failoverHolds(failure: nil, refused: true)
    }

    @Test func aTargetAnswering503() throws {
        try Self.failoverHolds(failure: .status(503))
    }

    @Test func aTargetAnswering429() throws {
        try Self.failoverHolds(failure: .status(429))
    }

    @Test func aTargetResettingAfterAccepting() throws {
        try Self.failoverHolds(failure: .closeBeforeResponse, on: "on: [connect, reset, 429, 502, 503, 504]")
    }

    @Test func aTargetHangingPastTheAttemptTimeout() throws {
        try Self.failoverHolds(failure: .hang, on: "on: [connect, timeout, 429, 502, 503, 504]", timeout: "attempt_timeout_ms: 300")
    }

    @Test func aClientErrorIsReturnedAsIsAndTriedOnce() throws {
        let a = try MockUpstream()
        let b = try MockUpstream()
        defer {
            a.shutdown()
            b.shutdown()
        }
        a.failure = .status(400)
        b.failure = .status(400)
        let proxy = try Self.proxy(targets: [(a.baseURL, "sk-a"), (b.baseURL, "sk-b")], workers: 1)
        defer { _ = proxy.stop() }
        let response = try proxy.connect().request("POST", "/llm/v1/chat/completions", headers: [Self.auth], body: Self.chat)
        #expect(response.status == 400)
        #expect(response.bodyText == #"{"status":400}"#)
        #expect(a.requests.count + b.requests.count == 1)
    }

    @Test func aBodyBeyondTheReplayBufferIsNotSentTwice() throws {
        let a = try MockUpstream()
        let b = try MockUpstream()
        defer {
            a.shutdown()
            b.shutdown()
        }
        a.failure = .status(503)
        let proxy = try Self.proxy(
            targets: [(a.baseURL, "sk-a"), (b.baseURL, "sk-b")], extra: "retry:\n  replay_buffer_bytes: 1024\n", workers: 1)
        defer { _ = proxy.stop() }
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 200_000)
        // The first choice of a fresh worker is the first target (equal weights, ties in order).
        let response = try proxy.connect().request("POST", "/llm/upload", headers: [Self.auth], body: body)
        #expect(response.status == 503, "the only upstream answer is relayed")
        #expect(a.requests.count == 1 && a.requests[0].bodyLength == body.count)
        #expect(b.requests.isEmpty, "a body that did not fit the replay buffer was sent again")
        // A small body moves on to the other target.
        let small = try proxy.connect().request("POST", "/llm/upload", headers: [Self.auth], body: Array(body.prefix(512)))
        #expect(small.status == 200)
        #expect(b.requests.count == 1 && b.requests[0].bodyLength == 512)
    }

    /// With `propagate_request_id`, the answer of a retried request carries the id as a first
    /// try's answer would (docs/observability.md "Request ids").
    @Test func aRetriedAnswerCarriesThePropagatedRequestID() throws {
        let a = try MockUpstream()
        let b = try MockUpstream()
        defer {
            a.shutdown()
            b.shutdown()
        }
        a.failure = .status(503)
        let proxy = try Self.proxy(
            targets: [(a.baseURL, "sk-a"), (b.baseURL, "sk-b")], more: "observability:\n  propagate_request_id: true\n",
            workers: 1)
        defer { _ = proxy.stop() }
        let response = try proxy.connect().request(
            "POST", "/llm/v1/chat/completions", headers: [Self.auth, ("x-request-id", "retried-1")], body: Self.chat)
        #expect(response.status == 200)
        #expect(a.requests.count == 1 && b.requests.count == 1, "the first try went to the failing target")
        #expect(response.headers(named: "x-request-id") == ["retried-1"])
        #expect(b.requests.first?.headers(named: "x-request-id") == ["retried-1"])
    }

    @Test func aFallbackUpstreamGetsItsOwnKeyAndHeader() throws {
        let primary = try MockUpstream()
        let azure = try MockUpstream()
        defer {
            primary.shutdown()
            azure.shutdown()
        }
        primary.failure = .status(503)
        let more = """
              azure:
                request_path: /azure
                target_url: "\(azure.baseURL)/deploy"
                api_key: "az-fallback-key"
                api_key_header: api-key

            """
        let proxy = try Self.proxy(targets: [(primary.baseURL, "sk-primary")], extra: "fallback: [azure]\n", more: more, workers: 1)
        defer { _ = proxy.stop() }
        let response = try proxy.connect().request("POST", "/llm/v1/chat/completions", headers: [Self.auth], body: Self.chat)
        #expect(response.status == 200)
        let sent = try #require(azure.requests.first)
        #expect(sent.uri == "/deploy/v1/chat/completions")
        #expect(sent.header("api-key") == "az-fallback-key")
        #expect(sent.header("authorization") == nil)
        #expect(primary.requests.first?.header("authorization") == "Bearer sk-primary")
        let line = try #require(proxy.waitForLogLines(containing: "Request processed", count: 1).first)
        #expect(line.contains("target_url=\(azure.baseURL)/deploy/v1/chat/completions"))
        #expect(line.contains("attempts=2"))
    }

    @Test func aStreamCutMidwayEndsAbnormallyAndIsLoggedTruncated() throws {
        let cut = try MockUpstream()
        defer { cut.shutdown() }
        cut.failure = .cutStream(after: 10)
        let proxy = try Self.proxy(targets: [(cut.baseURL, "sk-a")], workers: 1)
        defer { _ = proxy.stop() }
        let connection = try proxy.connect()
        try connection.send("GET /llm/sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.clientKey)\r\n\r\n")
        var events = 0
        var ended = false
        do {
            _ = try connection.readResponse { chunk in
                events += String(decoding: chunk, as: UTF8.self).components(separatedBy: "data: ").count - 1
            }
            ended = true
        } catch {}
        #expect(!ended, "the cut stream reached the client with its terminating chunk")
        #expect(events == 10)
        #expect(connection.isClosedByPeer())
        let line = try #require(proxy.waitForLogLines(containing: "Request processed", count: 1).first)
        #expect(line.contains("error=\"truncated: the upstream closed the connection mid-response\""))
    }

    @Test func theOpenAISDKRaisesOnACutStream() throws {
        let python = Binaries.packageRoot + "/.venv-tests/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "run .ci/install-deps first (it installs the OpenAI SDK)")
        let cut = try MockUpstream()
        defer { cut.shutdown() }
        cut.failure = .cutStream(after: 10)
        let proxy = try Self.proxy(targets: [(cut.baseURL + "/v1", "sk-a")], workers: 1)
        defer { _ = proxy.stop() }
        let script = Binaries.packageRoot + "/Tests/Fixtures/openai_sdk_truncated.py"
        let result = try ChildProcess.run(python, [script, "http://127.0.0.1:\(proxy.port)/llm", Self.clientKey], timeout: 60)
        #expect(result.stdout.contains("EVENTS 10"), "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("RAISED"), "the SDK took a cut stream for a complete one: \(result.stdout)")
        let line = try #require(proxy.waitForLogLines(containing: "Request processed", count: 1).first)
        #expect(line.contains("truncated"))
    }

    @Test func theLastUpstreamAnswerBeatsTheProxysError() throws {
        let busy = try MockUpstream()
        defer { busy.shutdown() }
        busy.failure = .status(503)
        let refused = "http://127.0.0.1:\(try TestPorts.closedPort())"
        let proxy = try Self.proxy(targets: [(busy.baseURL, "sk-a"), (refused, "sk-b")], workers: 1)
        defer { _ = proxy.stop() }
        // The first try gets the 503 (dropped, another try remains), the second no connection.
        let response = try proxy.connect().request("POST", "/llm/v1/chat/completions", headers: [Self.auth], body: Self.chat)
        #expect(response.status == 503)
        #expect(response.bodyText == #"{"status":503}"#)
        let line = try #require(proxy.waitForLogLines(containing: "Request processed", count: 1).first)
        #expect(line.contains("attempts=2"))
        #expect(line.contains("status=503"))
    }

    @Test func aReloadKeepsTheHealthOfTargetsThatStay() throws {
        let healthy = try MockUpstream()
        let failing = try MockUpstream()
        defer {
            healthy.shutdown()
            failing.shutdown()
        }
        failing.failure = .status(503)
        let health = "health:\n  failures: 1\n  cooldown_ms: 60000\n"
        let proxy = try Self.proxy(targets: [(failing.baseURL, "sk-a"), (healthy.baseURL, "sk-b")], extra: health)
        defer { _ = proxy.stop() }
        #expect(Self.load(proxy, rounds: 2) == [])
        let sent = failing.requests.count
        #expect(sent >= 1)
        // The same targets in the other order, and a third: the failing one stays out.
        let third = try MockUpstream()
        defer { third.shutdown() }
        let yaml = try String(contentsOfFile: proxy.configPath, encoding: .utf8)
        let reordered = yaml.replacingOccurrences(
            of:
                "      - target_url: \"\(failing.baseURL)\"\n        api_key: \"sk-a\"\n      - target_url: \"\(healthy.baseURL)\"\n        api_key: \"sk-b\"\n",
            with:
                "      - target_url: \"\(third.baseURL)\"\n        api_key: \"sk-c\"\n      - target_url: \"\(healthy.baseURL)\"\n        api_key: \"sk-b\"\n      - target_url: \"\(failing.baseURL)\"\n        api_key: \"sk-a\"\n"
        )
        #expect(reordered != yaml)
        try reordered.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
        #expect(try proxy.reload().status == 0)
        #expect(Self.load(proxy, rounds: 3) == [])
        #expect(!third.requests.isEmpty, "the reload did not take effect")
        #expect(failing.requests.count == sent, "the reload forgot that the failing target is out")
    }
}

/// Strings collected from several threads.
final class NIOLockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ item: String) { lock.withLock { storage.append(item) } }
    var items: [String] { lock.withLock { storage } }
}
