import NIOCore
import NIOHTTP1
import Testing
import Common
@testable import FluxgateWorker

@Suite struct ErrorResponseTests {
    @Test func bodyHasTheOpenAIErrorShape() {
        #expect(ProxyErrorResponse.unauthorized.jsonBody
            == #"{"error":{"message":"Invalid or missing API key.","type":"invalid_request_error","code":"invalid_api_key"}}"#)
    }

    @Test func headHasJSONContentTypeAndExactLength() {
        let error = ProxyErrorResponse.noRoute
        let body = error.body(allocator: ByteBufferAllocator())
        let head = error.head(closeConnection: false, bodyLength: body.readableBytes)
        #expect(head.status == .notFound)
        #expect(head.headers["content-type"] == ["application/json"])
        #expect(head.headers["content-length"] == [String(error.jsonBody.utf8.count)])
        #expect(head.headers["connection"].isEmpty)
        #expect(error.head(closeConnection: true, bodyLength: 1).headers["connection"] == ["close"])
    }

    @Test func everyProxyStatusHasAResponse() {
        let statuses = [ProxyErrorResponse.badRequest, .missingHost, .invalidPath, .unauthorized, .noRoute, .uriTooLong,
                        .headersTooLarge, .notImplemented, .versionNotSupported, .overloaded, .noUpstreams,
                        .upstreamUnreachable, .upstreamFailed, .upstreamTLS(.handshakeTimeout), .upstreamTimeout].map(\.status.code)
        #expect(Set(statuses) == [400, 401, 404, 414, 431, 501, 505, 503, 502, 504])
    }

    @Test func jsonStringsAreEscaped() {
        #expect(ProxyErrorResponse.quoted("a\"b\\c\n\u{01}") == #""a\"b\\c\n\u0001""#)
    }
}

@Suite struct PreflightTests {
    let limits = WorkerLimits()

    func head(_ version: HTTPVersion = .http1_1, _ method: HTTPMethod = .GET, uri: String = "/",
              headers: HTTPHeaders = ["Host": "proxy"]) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: headers)
    }

    @Test func http10IsRejectedWith505() {
        #expect(RequestPreflight.check(head(.http1_0), limits: limits) == .versionNotSupported)
    }

    @Test func connectAndUpgradesAreRejectedWith501() {
        #expect(RequestPreflight.check(head(.http1_1, .CONNECT), limits: limits) == .notImplemented)
        #expect(RequestPreflight.check(head(headers: ["Host": "h", "Upgrade": "websocket"]), limits: limits) == .notImplemented)
        #expect(RequestPreflight.check(head(headers: ["Host": "h", "Connection": "Upgrade"]), limits: limits) == .notImplemented)
    }

    @Test func missingBlankOrRepeatedHostIsRejectedWith400() {
        #expect(RequestPreflight.check(head(headers: [:]), limits: limits) == .missingHost)
        #expect(RequestPreflight.check(head(headers: ["Host": " "]), limits: limits) == .missingHost)
        #expect(RequestPreflight.check(head(headers: ["Host": "a", "Host": "b"]), limits: limits) == .missingHost)
        #expect(RequestPreflight.check(head(), limits: limits) == nil)
    }

    @Test func versionIsCheckedBeforeUpgradeAndHost() {
        #expect(RequestPreflight.check(head(.http1_0, .CONNECT, headers: [:]), limits: limits) == .versionNotSupported)
        #expect(RequestPreflight.check(head(.http1_1, .CONNECT, headers: [:]), limits: limits) == .notImplemented)
    }

    @Test func sizeLimits() {
        var small = WorkerLimits()
        small.maxRequestTargetBytes = 10
        small.maxHeaderCount = 2
        small.maxHeaderBytes = 20
        #expect(RequestPreflight.check(head(uri: "/" + String(repeating: "a", count: 10)), limits: small) == .uriTooLong)
        #expect(RequestPreflight.check(head(headers: ["Host": "h", "a": "1", "b": "2"]), limits: small) == .headersTooLarge)
        #expect(RequestPreflight.check(head(headers: ["Host": "h", "a": String(repeating: "x", count: 20)]), limits: small)
            == .headersTooLarge)
    }
}

@Suite struct InFlightLimiterTests {
    @Test func permitsAreCountedAndReturned() {
        let limiter = LocalInFlightLimiter(limit: 2)
        #expect(limiter.tryAcquire())
        #expect(limiter.tryAcquire())
        #expect(!limiter.tryAcquire())
        limiter.release()
        #expect(limiter.tryAcquire())
        #expect(limiter.current == 2)
    }
}

@Suite struct RequestLogRecordTests {
    @Test func renderedLineHasTheSpecsFieldsInOrderWithoutAbsentOnes() {
        let record = RequestLogRecord(clientIP: "127.0.0.1", method: "POST", requestURL: "/openai/v1?x=1",
                                      requestBodyLength: 12, apiKeyID: nil, targetURL: "http://mock/v1?x=1",
                                      upstream: "openai", durationMs: 3, status: 200, responseBodyLength: 99)
        let line = LogLineFormatter().format(timestamp: "T", level: .trace, message: "Request processed", metadata: record.metadata)
        #expect(line == "T TRACE Request processed client_ip=127.0.0.1 method=POST request_url=/openai/v1?x=1 "
            + "request_body_length=12 target_url=http://mock/v1?x=1 upstream=openai duration_ms=3 status=200 "
            + "response_body_length=99\n")
    }

    @Test func credentialQueryParametersAreRedactedAndOthersKept() {
        #expect(RequestLogRecord.redactingCredentials("/gemini/v1/models?key=AIzaSecret&alt=sse")
            == "/gemini/v1/models?key=REDACTED&alt=sse")
        #expect(RequestLogRecord.redactingCredentials("/x?Access_Token=t0ken&sig=abc&keep=1")
            == "/x?Access_Token=REDACTED&sig=REDACTED&keep=1")
        #expect(RequestLogRecord.redactingCredentials("/x?monkey=1&keys=2") == "/x?monkey=1&keys=2")
        #expect(RequestLogRecord.redactingCredentials("/x") == "/x")
    }

    @Test func longURLsAreCappedSoARequestLineStaysOneAtomicWrite() {
        let long = "/openai/" + String(repeating: "a", count: 8000)
        let record = RequestLogRecord(clientIP: "127.0.0.1", method: "GET", requestURL: long, targetURL: "http://u" + long,
                                      upstream: "openai", durationMs: 1, status: 200, responseBodyLength: 1)
        let line = LogLineFormatter().format(timestamp: "2026-11-22T03:09:25.123456Z", level: .trace,
                                             message: "Request processed", metadata: record.metadata)
        #expect(line.utf8.count < 4096)
        #expect(line.contains("...(truncated)"))
    }
}
