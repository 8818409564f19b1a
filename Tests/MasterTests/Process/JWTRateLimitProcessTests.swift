import Foundation
import Testing
import TestSupport

/// docs/rate-limits.md "JWT keys": a JWT key's limits count per token subject (`sub`), and per
/// `kid` for the tokens without one — across the workers of a host.
@Suite(.serialized) struct JWTRateLimitProcessTests {
    static let secret = "issuer-one-secret-of-at-least-32-bytes"

    static func yaml(mock: MockUpstream, limits: String, redis: Int? = nil) -> String {
        let store = redis.map {
            "\nrate_limits:\n  redis:\n    url: redis://127.0.0.1:\($0)/0\n    timeout_ms: 2000\n    on_unavailable: reject"
        }
        return """
            version: 1
            server:
              bind_address: "127.0.0.1:0"
              workers: 2
            api_keys:
              jwt:
                - id: issuer-1
                  key: "\(secret)"
                  limits: { \(limits) }
            upstreams:
              openai:
                request_path: "/openai"
                target_url: "\(mock.baseURL)"
                api_key: "sk-test"
            """ + (store ?? "")
    }

    static func token(_ claims: String) -> String { TestJWT.make(kid: "issuer-1", key: secret, claims: claims) }

    static func admitted(_ port: Int, _ token: String, _ total: Int) -> Int {
        RateLimitProcessTests.burst(port: port, connections: 4, total: total, token: token).filter { $0.0 == 200 }.count
    }

    @Test func eachSubjectHasItsOwnBudgetAndTokensWithoutSubShareTheKids() throws {
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(yaml: Self.yaml(mock: mock, limits: "requests_per_minute: 5"))
        defer { proxy.stop() }
        let alice = Self.token(#"{"sub":"alice"}"#)
        let bob = Self.token(#"{"sub":"bob"}"#)
        // Another token of alice's (other claims, same sub) spends alice's budget.
        let aliceAgain = Self.token(#"{"sub":"alice","exp":\#(TestJWT.now + 3600)}"#)
        #expect(Self.admitted(proxy.port, alice, 4) == 4)
        #expect(Self.admitted(proxy.port, aliceAgain, 4) == 1, "one subject, one budget, whatever the token")
        #expect(Self.admitted(proxy.port, bob, 12) == 5, "another subject under the same kid has its own five")
        let anonymous = Self.token("{}")
        let anonymousToo = Self.token(#"{"exp":\#(TestJWT.now + 3600)}"#)
        #expect(Self.admitted(proxy.port, anonymous, 3) == 3)
        #expect(Self.admitted(proxy.port, anonymousToo, 6) == 2, "tokens without sub share the kid's five")
        #expect(mock.requests.count == 15)
    }

    @Test func maxInFlightHoldsPerSubject() throws {
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(yaml: Self.yaml(mock: mock, limits: "max_in_flight: 1"))
        defer { proxy.stop() }
        let alice = Self.token(#"{"sub":"alice"}"#)
        let bob = Self.token(#"{"sub":"bob"}"#)
        let slow = try RawConnection(port: proxy.port, timeout: 30)
        try slow.send(
            "GET /openai/delay-headers?ms=3000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(alice)\r\n\r\n")
        // alice's first request is at the upstream (which answers it after 3 s).
        #expect(mock.wait { $0.requests.count == 1 })
        let second = try RawConnection(port: proxy.port, timeout: 30)
        #expect(try second.request("GET", "/openai/v1/models", headers: [("Authorization", "Bearer \(alice)")]).status == 429)
        #expect(try second.request("GET", "/openai/v1/models", headers: [("Authorization", "Bearer \(bob)")]).status == 200)
        #expect(try slow.readResponse().status == 200)
        #expect(try second.request("GET", "/openai/v1/models", headers: [("Authorization", "Bearer \(alice)")]).status == 200)
    }

    @Test func withRedisEachSubjectHasOneBudgetAcrossHostsInAKeyThatExpires() throws {
        let redis = try RedisServer()
        defer { redis.kill() }
        let mock = try MockUpstream()
        let yaml = Self.yaml(mock: mock, limits: "requests_per_minute: 3", redis: redis.port)
        let proxies = try (0..<2).map { _ in try FluxgateInstance(yaml: yaml) }
        defer { proxies.forEach { $0.stop() } }
        let alice = Self.token(#"{"sub":"alice"}"#)
        let bob = Self.token(#"{"sub":"bob"}"#)
        let anonymous = Self.token("{}")
        #expect(Self.admitted(proxies[0].port, alice, 2) == 2)
        #expect(Self.admitted(proxies[1].port, alice, 4) == 1, "alice's three are shared by both hosts")
        #expect(Self.admitted(proxies[1].port, bob, 4) == 3)
        #expect(Self.admitted(proxies[0].port, anonymous, 4) == 3)
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:issuer-1") == "3", "tokens without sub: the kid's key")
        let keys = try redis.cli("KEYS", "fluxgate:admissions:s:issuer-1:*").split(separator: "\n")
        #expect(keys.count == 2, "one key per subject, named by a digest of the sub: \(keys)")
        for key in keys {
            #expect(key.count == "fluxgate:admissions:s:issuer-1:".count + 32)
            #expect(try redis.cli("LLEN", String(key)) == "3")
            let ttl = Int(try redis.cli("PTTL", String(key))) ?? -1
            #expect(ttl > 0 && ttl <= 61_000, "a subject's key expires a minute after its last admission")
        }
        // A flushed script cache (NOSCRIPT): the check is sent again as EVAL and still counts.
        #expect(try redis.cli("SCRIPT", "FLUSH") == "OK")
        let carol = Self.token(#"{"sub":"carol"}"#)
        #expect(Self.admitted(proxies[0].port, carol, 5) == 3)
        #expect(Self.admitted(proxies[1].port, carol, 2) == 0)
    }
}
