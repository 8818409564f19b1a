import Foundation
import Testing
import TestSupport

/// docs/logging.md "The request line": one `Request processed` line per request, Fluxgate's fields
/// in order, no secret.
@Suite struct RequestLogProcessTests {
    @Test func oneLinePerRequestWithFluxgatesFieldsInOrder() throws {
        let f = try ProxyFixture()
        #expect(try f.request("POST", "/openai/v1/echo?x=1", body: Array("{\"a\":1}".utf8)).status == 200)
        #expect(try f.request("GET", "/openai/v1/models", headers: [("Authorization", "Bearer nope")]).status == 401)
        let lines = f.proxy.waitForLogLines(containing: "Request processed", count: 2)
        #expect(lines.count == 2)
        let pattern =
            /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z TRACE Request processed client_ip=127\.0\.0\.1 method=POST request_url=\/openai\/v1\/echo\?x=1 request_body_length=7 api_key=team-a target_url=http:\/\/127\.0\.0\.1:\d+\/v1\/echo\?x=1 upstream=openai duration_ms=\d+ status=200 response_body_length=11 request_id=[0-9a-f]{32} usage=missing$/
        #expect(lines[0].wholeMatch(of: pattern) != nil, "\(lines[0])")
        let rejected =
            /^\S+ TRACE Request processed client_ip=127\.0\.0\.1 method=GET request_url=\/openai\/v1\/models duration_ms=\d+ status=401 response_body_length=\d+ request_id=[0-9a-f]{32}$/
        #expect(lines[1].wholeMatch(of: rejected) != nil, "\(lines[1])")
    }

    @Test func noSecretEverReachesTheLog() throws {
        let f = try ProxyFixture()
        _ = try f.request("GET", "/openai/x")
        _ = try f.request("GET", "/openai/x", headers: [("x-api-key", ProxyFixture.clientKey)])
        let token = TestJWT.make(kid: "dev", key: ProxyFixture.jwtKey)
        _ = try f.request("GET", "/openai/x", headers: [("Authorization", "Bearer \(token)")])
        _ = try f.request("GET", "/openai/x", headers: [("Authorization", "Bearer \(ProxyFixture.otherClientKey)")])
        _ = try f.request("GET", "/openai/x?alt=sse&key=AIza-query-secret-123")
        let lines = f.proxy.waitForLogLines(containing: "Request processed", count: 5)
        #expect(lines.last?.contains("request_url=/openai/x?alt=sse&key=REDACTED") == true)
        let output = f.proxy.process.stdout + f.proxy.process.stderr
        for secret in [
            ProxyFixture.clientKey, ProxyFixture.otherClientKey, ProxyFixture.providerKey, ProxyFixture.jwtKey, token,
            "AIza-query-secret-123",
        ] {
            #expect(!output.contains(secret))
        }
    }

    /// docs/security.md "What is never logged": userinfo in an absolute-form target is refused
    /// (RFC 9110 §4.2.4) and logged without it; credential parameters are recognised however
    /// their name is percent-encoded, as every upstream decodes it.
    @Test func userinfoAndPercentEncodedCredentialNamesNeverReachTheLog() throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        try connection.send(
            "GET http://user:userinfo-secret-42@example.com/openai/r HTTP/1.1\r\nHost: example.com\r\n"
                + "Authorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
        let refused = try connection.readResponse()
        #expect(refused.status == 400)
        #expect(refused.openAIError?["code"] as? String == "userinfo_in_target")
        #expect(f.mock.requests.isEmpty, "nothing went upstream")
        #expect(
            try f.request("GET", "/openai/r?k%65y=encoded-secret-1&%6B%65%79=encoded-secret-2&%4B%45%59=encoded-secret-3&x=1")
                .status == 200)
        let lines = f.proxy.waitForLogLines(containing: "Request processed", count: 2)
        #expect(lines.count == 2)
        #expect(lines.first?.contains("request_url=http://REDACTED@example.com/openai/r") == true, "\(lines)")
        #expect(
            lines.last?.contains("request_url=/openai/r?k%65y=REDACTED&%6B%65%79=REDACTED&%4B%45%59=REDACTED&x=1") == true,
            "\(lines)")
        // Which secrets leaked is said by index: a failure message must not print them either.
        let output = f.proxy.process.stdout + f.proxy.process.stderr
        let secrets = ["userinfo-secret-42", "encoded-secret-1", "encoded-secret-2", "encoded-secret-3"]
        let leaked = secrets.indices.filter { output.contains(secrets[$0]) }
        #expect(leaked.isEmpty, "secrets \(leaked) of \(secrets.count) reached the log")
    }

    @Test func infoLevelHidesRequestLinesAndJSONFormatIsOneObjectPerLine() throws {
        let quiet = try ProxyFixture(environment: ["FLUXGATE_LOG": "info"])
        _ = try quiet.request("GET", "/openai/x")
        quiet.proxy.stop()
        #expect(quiet.proxy.logLines(containing: "Request processed").isEmpty)
        #expect(!quiet.proxy.logLines(containing: "Proxy server shutdown complete").isEmpty)

        let json = try ProxyFixture(environment: ["FLUXGATE_LOG_FORMAT": "json"])
        _ = try json.request("GET", "/openai/x")
        let line = try #require(json.proxy.waitForLogLines(containing: "Request processed", count: 1).first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "TRACE")
        #expect(object["status"] as? Int == 200)
        #expect(object["upstream"] as? String == "openai")
    }

    /// A 502 says why in the request line's `error` field, after Fluxgate's fields, in both
    /// formats: here the connection was refused (nothing listens on the target's port).
    @Test func aProxyMade502SaysWhyTheUpstreamCouldNotAnswer() throws {
        let port = try TestPorts.closedPort()
        let f = try ProxyFixture(upstreams: [.init(name: "gone", path: "/gone", target: "http://127.0.0.1:\(port)")])
        #expect(try f.request("GET", "/gone/x").status == 502)
        let line = try #require(f.proxy.waitForLogLines(containing: "Request processed", count: 1).first)
        #expect(line.contains(" status=502 "), "\(line)")
        #expect(line.contains(#" error="connect: connection refused" request_id="#), "\(line)")

        let json = try ProxyFixture(
            upstreams: [.init(name: "gone", path: "/gone", target: "http://127.0.0.1:\(port)")],
            environment: ["FLUXGATE_LOG_FORMAT": "json"])
        #expect(try json.request("GET", "/gone/x").status == 502)
        let jsonLine = try #require(json.proxy.waitForLogLines(containing: "Request processed", count: 1).first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(jsonLine.utf8)) as? [String: Any])
        #expect(object["error"] as? String == "connect: connection refused")
        #expect(jsonLine.contains(#","error":"connect: connection refused","request_id":""#), "\(jsonLine)")
    }
}
