import Foundation
import TestSupport

/// A running proxy in front of a mock upstream, configured per test.
struct ProxyFixture {
    static let clientKey = "client-key-team-a-0123456789abcdef"
    static let otherClientKey = "client-key-team-b-0123456789abcdef"
    static let providerKey = "sk-provider-secret-0123456789"
    static let jwtKey = "jwt-secret-0123456789abcdef0123456789"

    let mock: TestSupport.MockUpstream
    let proxy: FluxgateInstance

    struct Upstream {
        var name: String
        var path: String
        /// Appended to the mock's base URL (a base path), or a whole URL when it has a scheme.
        var target: String = ""
        var extra: String = ""
    }

    /// Defaults: one upstream `openai` on `/openai`, one static key `team-a`, one JWT key `dev`.
    init(
        upstreams: [Upstream] = [Upstream(name: "openai", path: "/openai")],
        server: String = "", upstreamSettings: String = "", auth: String? = nil,
        environment: [String: String] = [:]
    ) throws {
        let mock = try TestSupport.MockUpstream()
        var yaml = "version: 1\nserver:\n  bind_address: \"127.0.0.1:0\"\n  workers: 1\n"
        yaml += server.split(separator: "\n").map { "  \($0)\n" }.joined()
        yaml += "upstreams:\n"
        yaml += upstreamSettings.split(separator: "\n").map { "  \($0)\n" }.joined()
        for u in upstreams {
            let target = u.target.contains("://") ? u.target : mock.baseURL + u.target
            yaml += "  \(u.name):\n    request_path: \"\(u.path)\"\n    target_url: \"\(target)\"\n    api_key: \"\(Self.providerKey)\"\n"
            yaml += u.extra.split(separator: "\n").map { "    \($0)\n" }.joined()
        }
        yaml +=
            auth ?? """
                api_keys:
                  static:
                    - id: team-a
                      key: "\(Self.clientKey)"
                  jwt:
                    - id: dev
                      key: "\(Self.jwtKey)"

                """
        self.mock = mock
        self.proxy = try FluxgateInstance(yaml: yaml, environment: environment)
    }

    var bearer: (String, String) { ("Authorization", "Bearer \(Self.clientKey)") }

    func connect() throws -> RawConnection { try proxy.connect() }

    /// One request on a new connection.
    func request(
        _ method: String = "GET", _ target: String, headers: [(String, String)]? = nil,
        body: [UInt8] = []
    ) throws -> RawConnection.Response {
        try connect().request(method, target, headers: headers ?? [bearer], body: body)
    }
}

extension RawConnection.Response {
    /// The proxy's own errors: `{"error":{"message":…,"type":…,"code":…}}` with a JSON content type
    /// and a correct length. Returns the parsed `error` object.
    var openAIError: [String: Any]? {
        guard header("content-type")?.hasPrefix("application/json") == true,
            header("content-length").flatMap(Int.init) == body.count,
            let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let error = object["error"] as? [String: Any], error["message"] is String, error["type"] is String
        else { return nil }
        return error
    }
}
