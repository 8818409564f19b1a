import Foundation
import Testing
import TestSupport

/// docs/observability.md "Request ids": every request line has a `request_id`; the upstream's
/// own id is `upstream_request_id`; `propagate_request_id` sends the id upstream and back.
@Suite struct RequestIDProcessTests {
    static let keys = """
        api_keys:
          static:
            - id: team-a
              key: "\(ProxyFixture.clientKey)"

        """

    @Test func aValidClientIDIsLoggedAndAnInvalidOneReplaced() throws {
        let f = try ProxyFixture()
        _ = try f.request("GET", "/openai/request-id", headers: [f.bearer, ("X-Request-Id", "client-42.a:b_c")])
        _ = try f.request("GET", "/openai/x", headers: [f.bearer, ("x-request-id", "has space")])
        _ = try f.request("GET", "/openai/x", headers: [f.bearer, ("x-request-id", String(repeating: "a", count: 129))])
        let lines = f.proxy.waitForLogLines(containing: "Request processed", count: 3)
        #expect(lines[0].hasSuffix(" request_id=client-42.a:b_c upstream_request_id=upstream-id-1 usage=missing"), "\(lines[0])")
        #expect(
            lines[1].wholeMatch(of: /.* status=200 response_body_length=\d+ request_id=[0-9a-f]{32} usage=missing$/) != nil, "\(lines[1])")
        #expect(lines[2].wholeMatch(of: /.* request_id=[0-9a-f]{32} usage=missing$/) != nil, "\(lines[2])")
        // Without propagation the upstream sees the client's own header, untouched, and the
        // client gets the upstream's.
        #expect(f.mock.requests.first?.header("x-request-id") == "client-42.a:b_c")
        #expect(f.mock.requests.count == 3)
    }

    @Test func generatedIDsDiffer() throws {
        let f = try ProxyFixture()
        for _ in 0..<3 { _ = try f.request("GET", "/openai/x") }
        let ids = f.proxy.waitForLogLines(containing: "Request processed", count: 3).compactMap {
            $0.firstMatch(of: /request_id=([0-9a-f]{32})/).map { String($0.1) }
        }
        #expect(ids.count == 3 && Set(ids).count == 3, "\(ids)")
    }

    @Test func propagationSendsTheIDUpstreamAndBack() throws {
        let f = try ProxyFixture(auth: Self.keys + "observability:\n  propagate_request_id: true\n")
        let given = try f.request("GET", "/openai/request-id", headers: [f.bearer, ("x-request-id", "abc-123")])
        #expect(given.headers(named: "x-request-id") == ["abc-123"], "the upstream's own id is replaced")
        #expect(f.mock.requests.last?.headers(named: "x-request-id") == ["abc-123"])
        let made = try f.request("GET", "/openai/x", headers: [f.bearer, ("x-request-id", "bad id")])
        let id = try #require(made.header("x-request-id"))
        #expect(id.wholeMatch(of: /[0-9a-f]{32}/) != nil, "\(id)")
        #expect(f.mock.requests.last?.headers(named: "x-request-id") == [id])
        let lines = f.proxy.waitForLogLines(containing: "Request processed", count: 2)
        #expect(lines[0].hasSuffix(" request_id=abc-123 upstream_request_id=upstream-id-1 usage=missing"), "\(lines[0])")
        #expect(lines[1].hasSuffix(" request_id=\(id) usage=missing"), "\(lines[1])")
    }

    /// With propagation the proxy's own answers carry the id too: the client's when valid, else
    /// a generated one, the same as the request line's.
    @Test func propagationMarksTheProxysOwnAnswers() throws {
        let f = try ProxyFixture(auth: Self.keys + "observability:\n  propagate_request_id: true\n")
        let refused = try f.request("GET", "/openai/x", headers: [("authorization", "Bearer wrong"), ("x-request-id", "given-1")])
        #expect(refused.status == 401)
        #expect(refused.headers(named: "x-request-id") == ["given-1"])
        let unrouted = try f.request("GET", "/nowhere", headers: [f.bearer])
        #expect(unrouted.status == 404)
        let id = try #require(unrouted.header("x-request-id"))
        #expect(id.wholeMatch(of: /[0-9a-f]{32}/) != nil, "\(id)")
        let lines = f.proxy.waitForLogLines(containing: "Request processed", count: 2)
        #expect(lines[0].contains(" status=401 ") && lines[0].hasSuffix(" request_id=given-1"), "\(lines[0])")
        #expect(lines[1].hasSuffix(" request_id=\(id)"), "\(lines[1])")
        #expect(f.mock.requests.isEmpty)
    }
}
