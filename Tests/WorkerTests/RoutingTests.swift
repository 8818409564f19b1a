import Common
import NIOHTTP1
import Testing
@testable import FluxgateWorker

@Suite struct RoutingTests {
    func target(_ router: Router, _ uri: String, permitted: UpstreamSet? = nil, count: Int) -> String? {
        if case .matched(let match) = router.route(uri: uri, permitted: permitted ?? .all(count: count)) {
            return match.targetURL(uri: uri)
        }
        return nil
    }

    func upstreamName(_ router: Router, _ uri: String, count: Int) -> String? {
        if case .matched(let match) = router.route(uri: uri, permitted: .all(count: count)) { return match.upstream.name }
        return nil
    }

    @Test func specExampleOpenAIPrefixIsReplacedAndQueryKept() {
        let router = Router(upstreams: [Fixtures.upstream("openai", "/openai", Fixtures.url(.https, "api.openai.com"))])
        #expect(target(router, "/openai/v1/models?x=1", count: 1) == "https://api.openai.com/v1/models?x=1")
    }

    @Test func specExampleBasePathGetsTrailingSlashForExactPrefix() {
        let router = Router(upstreams: [Fixtures.upstream("h", "/test", Fixtures.url(.https, "h", path: "/v1"))])
        #expect(target(router, "/test", count: 1) == "https://h/v1/")
    }

    @Test func specExampleTrailingSlashRequestMapsToRoot() {
        let router = Router(upstreams: [Fixtures.upstream("mock", "/api", Fixtures.url(.http, "mock"))])
        #expect(target(router, "/api/", count: 1) == "http://mock/")
    }

    @Test func longestPrefixWinsAtSegmentBoundary() {
        let router = Router(upstreams: [
            Fixtures.upstream("root", "/"), Fixtures.upstream("api", "/api"),
            Fixtures.upstream("v1", "/api/v1"),
        ])
        #expect(upstreamName(router, "/api/v1/chat", count: 3) == "v1")
        #expect(upstreamName(router, "/api/v2/chat", count: 3) == "api")
        #expect(upstreamName(router, "/other", count: 3) == "root")
        #expect(upstreamName(router, "/api/v1x", count: 3) == "api")
    }

    @Test func prefixDoesNotMatchInsideASegment() {
        let router = Router(upstreams: [Fixtures.upstream("openai", "/openai")])
        #expect(router.route(uri: "/openaiv2/models", permitted: .all(count: 1)).isNoRoute)
        #expect(upstreamName(router, "/openai", count: 1) == "openai")
        #expect(upstreamName(router, "/openai/v1", count: 1) == "openai")
    }

    @Test func trailingSlashesOfPrefixAreIgnored() {
        let router = Router(upstreams: [Fixtures.upstream("api", "/api/", Fixtures.url(.http, "mock", path: "/base"))])
        #expect(target(router, "/api", count: 1) == "http://mock/base/")
        #expect(target(router, "/api/x", count: 1) == "http://mock/base/x")
    }

    @Test func rootPrefixMatchesEverything() {
        let router = Router(upstreams: [Fixtures.upstream("all", "/", Fixtures.url(.http, "mock", port: 8080))])
        #expect(target(router, "/v1/chat/completions", count: 1) == "http://mock:8080/v1/chat/completions")
        #expect(target(router, "/", count: 1) == "http://mock:8080/")
    }

    @Test func requestQueryReplacesTargetQuery() {
        let router = Router(upstreams: [Fixtures.upstream("q", "/q", Fixtures.url(.http, "mock", query: "fixed=1"))])
        #expect(target(router, "/q/a?b=2", count: 1) == "http://mock/a?b=2")
        #expect(target(router, "/q/a", count: 1) == "http://mock/a")
        #expect(target(router, "/q/a?", count: 1) == "http://mock/a?")
    }

    @Test func pathAndQueryAreForwardedRaw() {
        let router = Router(upstreams: [Fixtures.upstream("u", "/u")])
        #expect(target(router, "/u/a%20b/c%2Fd?x=%41&y", count: 1) == "http://mock/a%20b/c%2Fd?x=%41&y")
    }

    @Test func upstreamsTheCallerMayNotUseAreSkipped() {
        let router = Router(upstreams: [Fixtures.upstream("api", "/api"), Fixtures.upstream("v1", "/api/v1")])
        var onlyAPI = UpstreamSet(universe: 2)
        onlyAPI.insert(0)
        #expect(target(router, "/api/v1/x", permitted: onlyAPI, count: 2) == "http://mock/v1/x")
        var onlyV1 = UpstreamSet(universe: 2)
        onlyV1.insert(1)
        #expect(router.route(uri: "/api/other", permitted: onlyV1).isNoRoute)
    }

    @Test func noMatchIsNoRoute() {
        let router = Router(upstreams: [Fixtures.upstream("api", "/api")])
        #expect(router.route(uri: "/nope", permitted: .all(count: 1)).isNoRoute)
        #expect(Router(upstreams: []).route(uri: "/x", permitted: .all(count: 0)).isNoRoute)
    }

    @Test(arguments: [
        "/api/../admin", "/api/./x", "/api/%2e%2e/x", "/api/%2E/x", "/api/.%2e", "/api/%2e.",
        "/..", "/api/x/..",
    ])
    func dotSegmentsAreRejected(_ uri: String) {
        let router = Router(upstreams: [Fixtures.upstream("api", "/api")])
        #expect(router.route(uri: uri, permitted: .all(count: 1)).isInvalidPath)
    }

    @Test(arguments: ["/api/...", "/api/.well-known", "/api/a.b", "/api/%2e%2e%2e", "/api/x?p=../.."])
    func namesWithDotsThatAreNotDotSegmentsAreRouted(_ uri: String) {
        let router = Router(upstreams: [Fixtures.upstream("api", "/api")])
        #expect(!router.route(uri: uri, permitted: .all(count: 1)).isInvalidPath)
    }

    @Test func absoluteFormIsRoutedByItsPath() {
        let router = Router(upstreams: [Fixtures.upstream("api", "/api")])
        #expect(target(router, "http://proxy.example:8080/api/x?y=1", count: 1) == "http://mock/x?y=1")
        #expect(target(router, "HTTPS://proxy.example/api?y=1", count: 1) == "http://mock/?y=1")
        #expect(target(router, "http://proxy.example", count: 1) == nil)
        #expect(router.route(uri: "ftp://proxy.example/api/x", permitted: .all(count: 1)).isInvalidPath)
        #expect(router.route(uri: "api/x", permitted: .all(count: 1)).isInvalidPath)
        let root = Router(upstreams: [Fixtures.upstream("root", "/")])
        #expect(target(root, "http://proxy.example?q", count: 1) == "http://mock/?q")
        #expect(target(root, "http://proxy.example", count: 1) == "http://mock/")
        #expect(router.route(uri: "*", permitted: .all(count: 1)).isInvalidPath)
    }

    @Test func hostHeaderCarriesPortOnlyWhenNotDefault() {
        #expect(Fixtures.url(.http, "mock", port: 80).hostHeader == "mock")
        #expect(Fixtures.url(.https, "h", port: 8443).hostHeader == "h:8443")
        #expect(Fixtures.url(.http, "::1", port: 8080).hostHeader == "[::1]:8080")
    }
}

/// docs/routing-and-forwarding.md "Model routing", "Which requests": the six `POST` paths
/// exactly, and `GET /v1/models`; nothing else, whatever its length.
@Suite struct ModelEndpointTests {
    private func endpoint(_ method: HTTPMethod, _ path: String) -> Router.ModelEndpoint? {
        var path = path
        return path.withUTF8 { Router.modelEndpoint(method: method, path: UnsafeRawBufferPointer($0)) }
    }

    @Test func theSixModelPathsAreRoutedByModelWhenPosted() {
        for path in [
            "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages",
            "/v1/messages/count_tokens",
        ] {
            #expect(endpoint(.POST, path) == .routedByModel, "\(path)")
            #expect(endpoint(.GET, path) == nil, "GET \(path)")
            #expect(endpoint(.PUT, path) == nil, "PUT \(path)")
        }
    }

    @Test func onlyGetOfTheModelsPathIsTheListing() {
        #expect(endpoint(.GET, "/v1/models") == .listing)
        #expect(endpoint(.POST, "/v1/models") == nil)
    }

    @Test func aPathOfTheSameLengthOrAPrefixIsNotAModelEndpoint() {
        for path in [
            "/v1/chat/completionz", "/v2/completions", "/v1/embedding", "/v1/responses/", "/V1/messages",
            "/v1/messages/count_tokenz", "/v1/model", "/", "",
        ] {
            #expect(endpoint(.POST, path) == nil, "\(path)")
        }
        #expect(endpoint(.GET, "/v1/modelz") == nil)
    }
}

extension Router.Outcome {
    var isNoRoute: Bool { if case .noRoute = self { return true } else { return false } }
    var isInvalidPath: Bool { if case .invalidPath = self { return true } else { return false } }
}
