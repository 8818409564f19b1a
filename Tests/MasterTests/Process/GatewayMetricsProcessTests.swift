import Foundation
import Testing
import TestSupport

/// docs/observability.md's gateway metrics on real processes: attempts and target health
/// (failover), tokens (usage) and rate-limit refusals, scraped after known traffic.
@Suite(.serialized) struct GatewayMetricsProcessTests {
    static let clientKey = "client-key-metrics-0123456789abcdef"
    static let auth = ("Authorization", "Bearer \(clientKey)")

    /// A proxy whose `upstreams` are `upstreams` (YAML under the section), one client key with id
    /// `team-a` (and `keyLimits` under it), and the listener on a free port.
    static func proxy(upstreams: String, keyLimits: String = "", workers: Int = 2) throws -> (FluxgateInstance, Int) {
        let port = try TestPorts.closedPort()
        var yaml = "version: 1\nserver:\n  bind_address: \"127.0.0.1:0\"\n  workers: \(workers)\nupstreams:\n"
        yaml += upstreams.split(separator: "\n").map { "  \($0)\n" }.joined()
        yaml += "api_keys:\n  static:\n    - id: team-a\n      key: \"\(clientKey)\"\n"
        if !keyLimits.isEmpty { yaml += "      limits: { \(keyLimits) }\n" }
        yaml += "observability:\n  listen: \"127.0.0.1:\(port)\"\n"
        return (try FluxgateInstance(yaml: yaml), port)
    }

    static func lint(_ scrape: Scrape) throws {
        let lint = try promtool(["check", "metrics"], input: scrape.text)
        #expect(lint.status == 0 && lint.output.isEmpty, "promtool check metrics: \(lint.output)")
    }

    @Test func attemptsCountEveryTryByTargetAndResultAndTargetUpFollowsHealth() throws {
        let healthy = try MockUpstream()
        defer { healthy.shutdown() }
        let refused = "http://127.0.0.1:\(try TestPorts.closedPort())"
        let (proxy, port) = try Self.proxy(
            upstreams: """
                llm:
                  request_path: /llm
                  targets:
                    - target_url: "\(refused)"
                      api_key: sk-a
                    - target_url: "\(healthy.baseURL)"
                      api_key: sk-b
                  health: { failures: 2, cooldown_ms: 60000 }
                solo:
                  request_path: /solo
                  target_url: "\(healthy.baseURL)"
                  api_key: sk-c
                """)
        defer { _ = proxy.stop() }
        for _ in 0..<10 { #expect(try proxy.connect().request("GET", "/llm/x", headers: [Self.auth]).status == 200) }
        for _ in 0..<3 { #expect(try proxy.connect().request("GET", "/solo/status/503", headers: [Self.auth]).status == 503) }
        for _ in 0..<2 { #expect(try proxy.connect().request("GET", "/solo/status/400", headers: [Self.auth]).status == 400) }
        let scrape = try Scrape(port: port)
        let llmHealthy = [#"upstream="llm""#, #"target="\#(healthy.baseURL)""#]
        let llmRefused = [#"upstream="llm""#, #"target="\#(refused)""#]
        // Every request was answered by the healthy target; the refused one was tried until its
        // two failures took it out, then never again.
        #expect(scrape.values("fluxgate_upstream_attempts_total", llmHealthy + [#"result="ok""#]) == [10])
        #expect(scrape.values("fluxgate_upstream_attempts_total", llmRefused + [#"result="connect""#]) == [2])
        #expect(scrape.sum("fluxgate_upstream_attempts_total", [#"upstream="llm""#]) == 12)
        // A relayed status that `retry.on` lists is a failed try (`status`); a 400 is an answer.
        let solo = [#"upstream="solo""#, #"target="\#(healthy.baseURL)""#]
        #expect(scrape.values("fluxgate_upstream_attempts_total", solo + [#"result="status""#]) == [3])
        #expect(scrape.values("fluxgate_upstream_attempts_total", solo + [#"result="ok""#]) == [2])
        #expect(scrape.values("fluxgate_upstream_target_up", llmRefused) == [0])
        #expect(scrape.values("fluxgate_upstream_target_up", llmHealthy) == [1])
        #expect(scrape.values("fluxgate_upstream_target_up", solo) == [1])
        try Self.lint(scrape)
    }

    static let openAIBody = Array(
        #"{"id":"c1","object":"chat.completion","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":2}}}"#
            .utf8)
    static let anthropicBody = Array(
        #"{"id":"m1","type":"message","role":"assistant","model":"claude-x","content":[],"usage":{"input_tokens":10,"cache_read_input_tokens":4,"cache_creation_input_tokens":1,"output_tokens":6}}"#
            .utf8)

    static func canned(_ body: [UInt8]) -> MockUpstream.Canned {
        .init(headers: [("content-type", "application/json"), ("content-length", String(body.count))], pieces: [body])
    }

    @Test func tokensCountTheMocksUsageExactlyAndSurviveAKilledWorkerAndAReload() throws {
        let mock = try MockUpstream()
        defer { mock.shutdown() }
        mock.serve("/v1/openai-usage", Self.canned(Self.openAIBody))
        mock.serve("/v1/anthropic-usage", Self.canned(Self.anthropicBody))
        let upstreams = "llm:\n  request_path: /llm\n  target_url: \"\(mock.baseURL)\"\n  api_key: sk-a\n"
        let (proxy, port) = try Self.proxy(upstreams: upstreams)
        defer { _ = proxy.stop() }
        for _ in 0..<3 { #expect(try proxy.connect().request("POST", "/llm/v1/openai-usage", headers: [Self.auth]).status == 200) }
        for _ in 0..<2 { #expect(try proxy.connect().request("POST", "/llm/v1/anthropic-usage", headers: [Self.auth]).status == 200) }
        // The mock's own stream with a usage chunk: 5 in, 4 out, model gpt-mock.
        let stream = Array(#"{"model":"gpt-mock","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#.utf8)
        let streamed = try proxy.connect().request("POST", "/llm/v1/chat/completions", headers: [Self.auth], body: stream)
        #expect(streamed.bodyText.contains("[DONE]"))
        func check(_ scrape: Scrape) {
            func tokens(_ model: String, _ type: String) -> [Double] {
                scrape.values(
                    "fluxgate_tokens_total", [#"upstream="llm""#, #"key="team-a""#, #"model="\#(model)""#, #"type="\#(type)""#])
            }
            // OpenAI: input counts the cached tokens; Anthropic: its three input counts summed.
            #expect(tokens("gpt-4o-mini", "input") == [21] && tokens("gpt-4o-mini", "output") == [9])
            #expect(tokens("gpt-4o-mini", "cache_read") == [6] && tokens("gpt-4o-mini", "cache_write") == [0])
            #expect(tokens("claude-x", "input") == [30] && tokens("claude-x", "output") == [12])
            #expect(tokens("claude-x", "cache_read") == [8] && tokens("claude-x", "cache_write") == [2])
            #expect(tokens("gpt-mock", "input") == [5] && tokens("gpt-mock", "output") == [4])
            #expect(scrape.sum("fluxgate_tokens_total") == 21 + 9 + 6 + 30 + 12 + 8 + 2 + 5 + 4)
        }
        let before = try Scrape(port: port)
        check(before)
        try Self.lint(before)
        // A worker killed, then a reload that replaces every worker (another worker count): the
        // counts are the same.
        let workers = proxy.workerPIDs
        #expect(workers.count == 2)
        kill(workers[0], SIGKILL)
        _ = try #require(Scrape.wait(port: port) { $0.sum("fluxgate_worker_exits_total", [#"reason="crash""#]) == 1 })
        check(try Scrape(port: port))
        let text = try String(contentsOfFile: proxy.configPath, encoding: .utf8).replacingOccurrences(of: "workers: 2", with: "workers: 1")
        try text.write(toFile: proxy.configPath, atomically: true, encoding: .utf8)
        #expect(try proxy.reload().status == 0)
        let after = try #require(Scrape.wait(port: port, timeout: 60) { $0.sum("fluxgate_workers") == 1 })
        check(after)
    }

    @Test func modelNamesBeyondTheFirstHundredOfAnUpstreamCountAsOther() throws {
        let mock = try MockUpstream()
        defer { mock.shutdown() }
        for index in 0..<105 {
            let body = #"{"object":"chat.completion","model":"model-\#(index)","usage":{"prompt_tokens":1,"completion_tokens":2}}"#
            mock.serve("/v1/m\(index)", Self.canned(Array(body.utf8)))
        }
        let upstreams = "llm:\n  request_path: /llm\n  target_url: \"\(mock.baseURL)\"\n  api_key: sk-a\n"
        let (proxy, port) = try Self.proxy(upstreams: upstreams)
        defer { _ = proxy.stop() }
        let connection = try proxy.connect()
        for index in 0..<105 {
            #expect(try connection.request("POST", "/llm/v1/m\(index)", headers: [Self.auth]).status == 200)
        }
        // model-0 again, from whichever worker: the same series.
        #expect(try proxy.connect().request("POST", "/llm/v1/m0", headers: [Self.auth]).status == 200)
        let scrape = try Scrape(port: port)
        let models = Set(
            scrape.text.split(separator: "\n").filter { $0.hasPrefix("fluxgate_tokens_total{") }
                .compactMap { $0.firstMatch(of: /model="([^"]*)"/).map { String($0.1) } })
        #expect(models == Set((0..<100).map { "model-\($0)" } + ["other"]))
        #expect(scrape.values("fluxgate_tokens_total", [#"model="other""#, #"type="input""#]) == [5])
        #expect(scrape.values("fluxgate_tokens_total", [#"model="model-0""#, #"type="output""#]) == [4])
        #expect(scrape.sum("fluxgate_tokens_total", [#"type="input""#]) == 106)
        try Self.lint(scrape)
    }

    @Test func rateLimitedCountsEachRefusalByKeyAndLimit() throws {
        let mock = try MockUpstream()
        defer { mock.shutdown() }
        let upstreams = "llm:\n  request_path: /llm\n  target_url: \"\(mock.baseURL)\"\n  api_key: sk-a\n"
        let (proxy, port) = try Self.proxy(upstreams: upstreams, keyLimits: "requests_per_minute: 2")
        defer { _ = proxy.stop() }
        let statuses = try (0..<7).map { _ in try proxy.connect().request("GET", "/llm/x", headers: [Self.auth]).status }
        #expect(statuses.filter { $0 == 429 }.count == 5)
        let scrape = try Scrape(port: port)
        #expect(scrape.values("fluxgate_rate_limited_total", [#"key="team-a""#, #"limit="requests""#]) == [5])
        #expect(scrape.values("fluxgate_rate_limited_total", [#"key="team-a""#, #"limit="in_flight""#]) == [0])
        #expect(scrape.values("fluxgate_requests_total", [#"key="team-a""#, #"code="429""#]) == [5])
        try Self.lint(scrape)
    }
}
