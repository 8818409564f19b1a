import Foundation
import Testing
import TestSupport

/// docs/rate-limits.md "TLS to Redis": `rediss://` through the worker's own OpenSSL, against a
/// real `redis-server` that accepts only TLS; the server's certificate is verified.
@Suite(.serialized) struct RedisTLSRateLimitProcessTests {
    static func yaml(mock: MockUpstream, redis: Int, caFile: String) -> String {
        RateLimitProcessTests.yaml(mock: mock, limits: "requests_per_minute: 3") + """

            rate_limits:
              redis:
                url: rediss://127.0.0.1:\(redis)/0
                tls_ca_file: "\(caFile)"
                timeout_ms: 2000
                on_unavailable: reject
            """
    }

    @Test func aRedissLimitCountsInTheTLSRedis() throws {
        let pki = try TestCertificates()
        let redis = try RedisServer(tls: (pki.certificate("server"), pki.key("server"), pki.caFile))
        defer { redis.kill() }
        let mock = try MockUpstream()
        let proxy = try FluxgateInstance(yaml: Self.yaml(mock: mock, redis: redis.port, caFile: pki.caFile))
        defer { proxy.stop() }
        let connection = try proxy.connect(timeout: 30)
        let statuses = try (0..<5).map { _ in
            try connection.request("GET", "/openai/v1/models", headers: RedisRateLimitProcessTests.auth).status
        }
        #expect(statuses == [200, 200, 200, 429, 429])
        #expect(try redis.cli("LLEN", "fluxgate:admissions:k:team-a") == "3")
        #expect(mock.requests.count == 3)
    }

    @Test func aRedisWhoseCertificateTheCADidNotIssueIsUnavailable() throws {
        let pki = try TestCertificates()
        let redis = try RedisServer(tls: (pki.certificate("server"), pki.key("server"), pki.caFile))
        defer { redis.kill() }
        let mock = try MockUpstream()
        // Trusting another CA only: the handshake fails, nothing is sent, on_unavailable rejects.
        let proxy = try FluxgateInstance(
            yaml: Self.yaml(mock: mock, redis: redis.port, caFile: pki.certificate("otherca")))
        defer { proxy.stop() }
        let connection = try proxy.connect(timeout: 30)
        let statuses = try (0..<3).map { _ in
            try connection.request("GET", "/openai/v1/models", headers: RedisRateLimitProcessTests.auth).status
        }
        #expect(statuses == [503, 503, 503])
        #expect(try redis.cli("EXISTS", "fluxgate:admissions:k:team-a") == "0")
        #expect(mock.requests.isEmpty)
    }
}
