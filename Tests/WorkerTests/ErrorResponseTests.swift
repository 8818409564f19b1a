import NIOCore
import NIOHTTP1
import Testing
import Common
@testable import FluxgateWorker

@Suite struct ErrorResponseTests {
    @Test func bodyHasTheOpenAIErrorShape() {
        #expect(
            ProxyErrorResponse.unauthorized.jsonBody
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
        let statuses = [
            ProxyErrorResponse.badRequest, .missingHost, .userinfoInTarget, .invalidPath, .unauthorized, .noRoute, .uriTooLong,
            .headersTooLarge, .notImplemented, .versionNotSupported, .overloaded, .noUpstreams,
            .upstreamUnreachable, .upstreamFailed, .upstreamTLS(.handshakeTimeout), .upstreamTimeout,
        ].map(\.status.code)
        #expect(Set(statuses) == [400, 401, 404, 414, 431, 501, 505, 503, 502, 504])
    }

    @Test func jsonStringsAreEscaped() {
        #expect(ProxyErrorResponse.quoted("a\"b\\c\n\u{01}") == #""a\"b\\c\n\u0001""#)
    }
}

@Suite struct PreflightTests {
    let limits = WorkerLimits()

    /// The head the parser reads from `text` (a request line and header lines).
    func head(_ text: String, limits: WorkerLimits = WorkerLimits()) throws -> RequestHead {
        var parser = RequestParser(limits: limits.parser)
        parser.append(ByteBuffer(string: text + "\r\n"))
        guard case .head(let request) = parser.next() else { throw ParseFailed() }
        return request
    }
    struct ParseFailed: Error {}

    @Test func http10IsRejectedWith505() throws {
        #expect(RequestPreflight.check(try head("GET / HTTP/1.0\r\nHost: p\r\n"), limits: limits) == .versionNotSupported)
    }

    @Test func connectAndUpgradesAreRejectedWith501() throws {
        #expect(RequestPreflight.check(try head("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n"), limits: limits) == .notImplemented)
        #expect(RequestPreflight.check(try head("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"), limits: limits) == .notImplemented)
        #expect(
            RequestPreflight.check(try head("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"), limits: limits)
                == .notImplemented)
        #expect(RequestPreflight.check(try head("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgraded\r\n"), limits: limits) == nil)
    }

    @Test func missingBlankOrRepeatedHostIsRejectedWith400() throws {
        #expect(RequestPreflight.check(try head("GET / HTTP/1.1\r\n"), limits: limits) == .missingHost)
        #expect(RequestPreflight.check(try head("GET / HTTP/1.1\r\nHost:  \t\r\n"), limits: limits) == .missingHost)
        #expect(RequestPreflight.check(try head("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n"), limits: limits) == .missingHost)
        #expect(RequestPreflight.check(try head("GET / HTTP/1.1\r\nHOST: proxy\r\n"), limits: limits) == nil)
    }

    /// RFC 9110 §4.2.4; checked with the target's size, before anything else reads it.
    @Test func userinfoInTheTargetIsRejectedWith400() throws {
        for target in ["http://user:pw@h/openai/x", "HTTPS://u@h:443", "http://@h/", "ftp://u:p@h/", "u:p@h:443"] {
            #expect(
                RequestPreflight.check(try head("GET \(target) HTTP/1.1\r\nHost: h\r\n"), limits: limits) == .userinfoInTarget,
                "\(target)")
        }
        for target in ["/users/@me", "/x?email=a@b", "http://h/a@b", "http://h?x=@", "*"] {
            #expect(RequestPreflight.check(try head("GET \(target) HTTP/1.1\r\nHost: h\r\n"), limits: limits) == nil, "\(target)")
        }
        #expect(
            RequestPreflight.check(try head("GET http://u@h/ HTTP/1.0\r\n"), limits: limits) == .userinfoInTarget,
            "before the version: nothing else looks at such a request")
    }

    @Test func versionIsCheckedBeforeUpgradeAndHost() throws {
        #expect(RequestPreflight.check(try head("CONNECT h:1 HTTP/1.0\r\n"), limits: limits) == .versionNotSupported)
        #expect(RequestPreflight.check(try head("CONNECT h:1 HTTP/1.1\r\n"), limits: limits) == .notImplemented)
    }

    @Test func theTargetLimitGives414AndTheHeaderLimits431AtTheParser() throws {
        var small = WorkerLimits()
        small.maxRequestTargetBytes = 10
        small.maxHeaderCount = 2
        small.maxHeaderBytes = 20
        #expect(
            RequestPreflight.check(
                try head("GET /" + String(repeating: "a", count: 10) + " HTTP/1.1\r\nHost: h\r\n", limits: small),
                limits: small) == .uriTooLong)
        for text in [
            "GET / HTTP/1.1\r\nHost: h\r\na: 1\r\nb: 2\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\na: " + String(repeating: "x", count: 20) + "\r\n",
        ] {
            var parser = RequestParser(limits: small.parser)
            parser.append(ByteBuffer(string: text + "\r\n"))
            guard case .malformed(let error) = parser.next() else { Issue.record("parsed: \(text)"); continue }
            #expect(ProxyErrorResponse(error) == .headersTooLarge)
        }
    }

    /// What the parser notes about the headers while reading them, for the checks and the exchange.
    @Test func headerFactsAreFoundInAnyCase() throws {
        let request = try head(
            "POST / HTTP/1.1\r\nhost: h\r\nEXPECT: 100-Continue\r\nAuthorization: Bearer a\r\n"
                + "authorization: Bearer b\r\nX-API-KEY: k\r\nConnection: Close\r\nTransfer-Encoding: chunked\r\n")
        #expect(request.facts.expectsContinue && request.facts.connectionClose && !request.keepAlive)
        #expect(request.authorization == "Bearer a" && request.xAPIKey == "k")
        #expect(request.facts.framing == .chunked)
        #expect(try head("GET / HTTP/1.1\r\nHost: h\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.0\r\nHost: h\r\n").keepAlive)
        #expect(try head("GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n").keepAlive)
        #expect(try head("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n").facts.framing == .contentLength)
        #expect(try head("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continuex\r\n").facts.expectsContinue == false)
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
        let record = RequestLogRecord(
            clientIP: "127.0.0.1", method: "POST", requestURL: "/openai/v1?x=1",
            requestBodyLength: 12, apiKeyID: nil, targetURL: "http://mock/v1?x=1",
            upstream: "openai", durationMs: 3, status: 200, responseBodyLength: 99)
        let line = LogLineFormatter().format(timestamp: "T", level: .trace, message: "Request processed", metadata: record.metadata)
        #expect(
            line == "T TRACE Request processed client_ip=127.0.0.1 method=POST request_url=/openai/v1?x=1 "
                + "request_body_length=12 target_url=http://mock/v1?x=1 upstream=openai duration_ms=3 status=200 "
                + "response_body_length=99\n")
    }

    @Test func longURLsAreCappedSoARequestLineStaysOneAtomicWrite() {
        let long = "/openai/" + String(repeating: "a", count: 8000)
        let record = RequestLogRecord(
            clientIP: "127.0.0.1", method: "GET", requestURL: long, targetURL: "http://u" + long,
            upstream: "openai", durationMs: 1, status: 200, responseBodyLength: 1)
        let line = LogLineFormatter().format(
            timestamp: "2026-11-22T03:09:25.123456Z", level: .trace,
            message: "Request processed", metadata: record.metadata)
        #expect(line.utf8.count < 4096)
        #expect(line.contains("...(truncated)"))
    }
}
