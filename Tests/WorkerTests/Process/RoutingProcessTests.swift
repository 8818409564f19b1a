import Foundation
import Testing
import TestSupport

/// docs/routing-and-forwarding.md "Routing" and "Target URL": which upstream, and what URL it
/// receives.
@Suite struct RoutingProcessTests {
    let upstreams: [ProxyFixture.Upstream] = [
        .init(name: "api", path: "/api", target: "/one"),
        .init(name: "api-v2", path: "/api/v2/", target: "/two/"),
        .init(name: "root", path: "/", target: "/root?dropped=1"),
    ]

    @Test func longestPrefixWinsAtASegmentBoundaryAndTheQueryIsTheRequests() throws {
        let f = try ProxyFixture(upstreams: upstreams)
        let cases: [(String, String)] = [
            ("/api/chat?x=1", "/one/chat?x=1"),
            ("/api", "/one/"),
            ("/api/v2/models", "/two/models"),
            ("/api/v2", "/two/"),
            ("/apiv2/models", "/root/apiv2/models"),
            ("/other?q=a%20b", "/root/other?q=a%20b"),
            ("/", "/root/"),
        ]
        for (request, _) in cases {
            #expect(try f.request("GET", request).status == 200, "\(request)")
        }
        #expect(f.mock.requests.map(\.uri) == cases.map(\.1))
    }

    @Test func noMatchingUpstreamIs404() throws {
        let f = try ProxyFixture(upstreams: [.init(name: "api", path: "/api")])
        let response = try f.request("GET", "/apix/models")
        #expect(response.status == 404)
        #expect(response.openAIError != nil)
        #expect(f.mock.requests.isEmpty)
    }

    @Test(arguments: ["/api/../admin", "/api/./x", "/api/%2e%2e/admin", "/api/%2E/x", "/api/.%2E/x", "/api/.."])
    func dotSegmentsAreRejectedWith400(path: String) throws {
        let f = try ProxyFixture(upstreams: [.init(name: "api", path: "/api")])
        let response = try f.request("GET", path)
        #expect(response.status == 400, "\(path)")
        #expect(f.mock.requests.isEmpty)
    }

    @Test func targetBasePathExamplesFromTheSpec() throws {
        let f = try ProxyFixture(upstreams: [
            .init(name: "test", path: "/test", target: "/v1"), .init(name: "mock", path: "/api", target: ""),
        ])
        #expect(try f.request("GET", "/test").status == 200)
        #expect(try f.request("GET", "/api/").status == 200)
        #expect(f.mock.requests.map(\.uri) == ["/v1/", "/"])
    }
}
