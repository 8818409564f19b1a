import Foundation
import Testing
import TestSupport

/// docs/authentication.md seen from a client: the real master and worker in front of a mock
/// upstream.
@Suite struct AuthProcessTests {
    @Test func staticKeyReachesTheUpstreamWithTheProviderKeyInstead() throws {
        let f = try ProxyFixture()
        let response = try f.request("GET", "/openai/v1/models")
        #expect(response.status == 200)
        let received = try #require(f.mock.requests.last)
        #expect(received.uri == "/v1/models")
        #expect(received.headers(named: "authorization") == ["Bearer \(ProxyFixture.providerKey)"])
    }

    @Test func xAPIKeyHeaderIsAcceptedAndNeverForwarded() throws {
        let f = try ProxyFixture()
        let response = try f.request("GET", "/openai/v1/models", headers: [("x-api-key", ProxyFixture.clientKey)])
        #expect(response.status == 200)
        let received = try #require(f.mock.requests.last)
        #expect(received.header("x-api-key") == nil)
        #expect(received.headers(named: "authorization") == ["Bearer \(ProxyFixture.providerKey)"])
    }

    @Test func anthropicStyleUpstreamGetsTheKeyInXAPIKey() throws {
        let f = try ProxyFixture(upstreams: [.init(name: "anthropic", path: "/anthropic", extra: "api_key_header: x-api-key")])
        let response = try f.request(
            "POST", "/anthropic/v1/messages", headers: [("x-api-key", ProxyFixture.clientKey)],
            body: Array("{}".utf8))
        #expect(response.status == 200)
        let received = try #require(f.mock.requests.last)
        #expect(received.headers(named: "x-api-key") == [ProxyFixture.providerKey])
        #expect(received.header("authorization") == nil)
    }

    @Test func azureStyleUpstreamGetsTheKeyInAPIKey() throws {
        let f = try ProxyFixture(upstreams: [.init(name: "azure", path: "/azure", extra: "api_key_header: api-key")])
        #expect(try f.request("GET", "/azure/x").status == 200)
        let received = try #require(f.mock.requests.last)
        #expect(received.headers(named: "api-key") == [ProxyFixture.providerKey])
        #expect(received.header("authorization") == nil)
    }

    @Test(arguments: [
        [("Authorization", "Bearer wrong-key")],
        [("Authorization", "bearer \(ProxyFixture.clientKey)")],
        [("Authorization", "Basic \(ProxyFixture.clientKey)")],
        [("Authorization", "Bearer ")],
        [],
    ])
    func badCredentialsAreTheSame401AndNothingGoesUpstream(headers: [(String, String)]) throws {
        let f = try ProxyFixture()
        let response = try f.request("GET", "/openai/v1/models", headers: headers)
        #expect(response.status == 401)
        #expect(response.openAIError != nil, "body: \(response.bodyText)")
        #expect(f.mock.requests.isEmpty)
    }

    @Test func validJWTIsAccepted() throws {
        let f = try ProxyFixture()
        let token = TestJWT.make(kid: "dev", key: ProxyFixture.jwtKey, claims: "{\"exp\":\(TestJWT.now + 600),\"sub\":\"u1\"}")
        let response = try f.request("GET", "/openai/v1/models", headers: [("Authorization", "Bearer \(token)")])
        #expect(response.status == 200)
        #expect(f.mock.requests.last?.headers(named: "authorization") == ["Bearer \(ProxyFixture.providerKey)"])
        let line = f.proxy.waitForLogLines(containing: "Request processed", count: 1).first ?? ""
        #expect(line.contains("api_key=dev"))
        #expect(!line.contains(token))
    }

    @Test(arguments: [
        ("expired", TestJWT.make(kid: "dev", key: ProxyFixture.jwtKey, claims: "{\"exp\":\(TestJWT.now - 5)}")),
        ("not yet valid", TestJWT.make(kid: "dev", key: ProxyFixture.jwtKey, claims: "{\"nbf\":\(TestJWT.now + 600)}")),
        ("audience", TestJWT.make(kid: "dev", key: ProxyFixture.jwtKey, claims: "{\"aud\":\"x\"}")),
        ("unknown kid", TestJWT.make(kid: "nope", key: ProxyFixture.jwtKey)),
        ("wrong key", TestJWT.make(kid: "dev", key: "another-secret-0123456789abcdef0123")),
        ("alg none", TestJWT.make(header: "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"dev\"}", payload: "{}", key: ProxyFixture.jwtKey)),
    ])
    func invalidJWTIsRejected(reason: String, token: String) throws {
        let f = try ProxyFixture()
        let response = try f.request("GET", "/openai/v1/models", headers: [("Authorization", "Bearer \(token)")])
        #expect(response.status == 401, "\(reason)")
        #expect(f.mock.requests.isEmpty, "\(reason)")
    }

    @Test func keyLimitedToOneUpstreamCannotReachAnother() throws {
        let auth = """
            api_keys:
              static:
                - id: limited
                  key: "\(ProxyFixture.clientKey)"
                  upstreams: [a]

            """
        let f = try ProxyFixture(
            upstreams: [.init(name: "a", path: "/a", target: "/base-a"), .init(name: "b", path: "/b", target: "/base-b")],
            auth: auth)
        #expect(try f.request("GET", "/a/x").status == 200)
        #expect(try f.request("GET", "/b/x").status == 404)
        #expect(f.mock.requests.map(\.uri) == ["/base-a/x"])
    }

    @Test func openProxyNeedsNoKeyAndStripsAnyClientAuthorization() throws {
        let f = try ProxyFixture(auth: "")
        let response = try f.request("GET", "/openai/v1/models", headers: [("Authorization", "Bearer whatever-the-client-sent")])
        #expect(response.status == 200)
        #expect(f.mock.requests.last?.headers(named: "authorization") == ["Bearer \(ProxyFixture.providerKey)"])
    }
}
