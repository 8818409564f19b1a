import Foundation
import Testing
import TestSupport

/// Server-sent events and other streams: relayed as they arrive, cut only when idle, cancelled
/// upstream when the client leaves.
@Suite struct StreamingProcessTests {
    /// Each event carries the mock's send time (same clock: the mock runs in this process).
    static func sentNanoseconds(_ chunk: [UInt8]) -> [UInt64] {
        String(decoding: chunk, as: UTF8.self).split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "\"sent_ns\":") else { return nil }
            return UInt64(line[range.upperBound...].prefix { $0.isNumber })
        }
    }

    @Test func sseEventsReachTheClientAsTheUpstreamFlushesThem() throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        try connection.send(
            "GET /openai/sse?n=20&interval_ms=25 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
        var delaysMs: [Double] = []
        var events = 0
        let response = try connection.readResponse { chunk in
            let arrived = DispatchTime.now().uptimeNanoseconds
            for sent in Self.sentNanoseconds(chunk) {
                events += 1
                delaysMs.append(Double(arrived - sent) / 1e6)
            }
        }
        #expect(response.status == 200)
        #expect(response.header("content-type") == "text/event-stream")
        #expect(events == 20)
        let sorted = delaysMs.sorted()
        let median = sorted[sorted.count / 2]
        // Events are 25 ms apart: a buffering proxy would deliver several per read and delay them
        // by tens of ms. Debug builds on a loaded 2-core CI machine still relay within a few ms.
        #expect(median < 10, "median delay \(median) ms, all: \(delaysMs)")
        #expect(sorted.filter { $0 > 25 }.count <= 2, "delays: \(delaysMs)")
    }

    @Test func aStreamMayOutliveTheRequestTimeoutWhileItKeepsProducing() throws {
        let f = try ProxyFixture(upstreamSettings: "request_timeout_ms: 300")
        let response = try f.request("GET", "/openai/sse?n=12&interval_ms=100")
        #expect(response.status == 200)
        #expect(Self.sentNanoseconds(response.body).count == 12)
    }

    @Test func noResponseHeadersWithinTheRequestTimeoutIs504() throws {
        let f = try ProxyFixture(upstreamSettings: "request_timeout_ms: 300")
        let start = Date()
        let response = try f.request("GET", "/openai/hang")
        #expect(response.status == 504)
        #expect(response.openAIError != nil)
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(try f.request("GET", "/openai/delay-headers?ms=50").status == 200)
    }

    /// Nothing of a request that ended in an error, carried a body or was a HEAD reaches the next
    /// request on the same keep-alive connection (a guard for reusing per-connection state such as
    /// the exchange: docs/performance.md "plainpath4").
    @Test func eachRequestOnAKeepAliveConnectionStartsFresh() throws {
        let f = try ProxyFixture(upstreamSettings: "request_timeout_ms: 300")
        let connection = try f.connect()
        let hung = try connection.request("GET", "/openai/hang", headers: [f.bearer])
        #expect(hung.status == 504)
        #expect(hung.openAIError != nil)
        let upload = try connection.request("POST", "/openai/upload", headers: [f.bearer], body: Array(repeating: 0x61, count: 100))
        #expect(upload.status == 200)
        #expect(String(decoding: upload.body, as: UTF8.self).contains("\"length\":100"))
        let head = try connection.request("HEAD", "/openai/status/404", headers: [f.bearer])
        #expect(head.status == 404)
        #expect(head.body.isEmpty)
        // A body again after the HEAD's none; no request body after the upload's.
        let get = try connection.request("GET", "/openai/status/201", headers: [f.bearer])
        #expect(get.status == 201)
        #expect(String(decoding: get.body, as: UTF8.self) == "{\"status\":201}")
        let last = try #require(f.mock.requests.last)
        #expect(last.method == "GET")
        #expect(last.uri == "/status/201")
        #expect(last.header("content-length") == nil)
        #expect(last.bodyLength == 0)
    }

    @Test func aStreamIdleLongerThanTheIdleTimeoutIsCut() throws {
        let f = try ProxyFixture(upstreamSettings: "stream_idle_timeout_ms: 300")
        let connection = try f.connect()
        try connection.send(
            "GET /openai/sse?n=3&interval_ms=1500 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
        var events = 0
        #expect(throws: (any Error).self) {
            _ = try connection.readResponse { events += Self.sentNanoseconds($0).count }
        }
        #expect(events == 1, "the first event arrives, then the stream is cut as idle")
    }

    @Test func clientLeavingMidStreamCancelsTheUpstreamExchange() throws {
        let f = try ProxyFixture()
        let connection = try f.connect()
        try connection.send(
            "GET /openai/sse?n=500&interval_ms=10 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
        let head = try connection.readHead()
        #expect(head.status == 200)
        connection.close(reset: true)
        #expect(
            f.mock.wait(timeout: 5) { $0.abortedResponses == 1 && $0.connectionsClosed == $0.connectionsOpened },
            "the upstream connection is closed, not left streaming or returned to the pool")
        #expect(try f.request("GET", "/openai/x").status == 200)
        let line = f.proxy.waitForLogLines(containing: "request_url=/openai/sse", count: 1).first
        #expect(line != nil, "an aborted request is still logged")
    }

    @Test func maxConnectionsAnswers503AtOnceWhenFull() throws {
        let f = try ProxyFixture(server: "max_connections: 2")
        let first = try f.connect(), second = try f.connect()
        for c in [first, second] {
            try c.send("GET /openai/hang HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(ProxyFixture.clientKey)\r\n\r\n")
        }
        #expect(f.mock.wait { $0.requests.count == 2 })
        let start = Date()
        let third = try f.request("GET", "/openai/x")
        #expect(third.status == 503)
        #expect(third.openAIError != nil)
        #expect(Date().timeIntervalSince(start) < 2)
        first.close()
        second.close()
        #expect(f.mock.wait { $0.connectionsClosed >= 2 })
        // Slots free up when the in-flight requests end.
        var status = 0
        for _ in 0..<50 where status != 200 {
            status = try f.request("GET", "/openai/x").status
            if status != 200 { _ = f.mock.wait(timeout: 0.05) { _ in false } }
        }
        #expect(status == 200)
    }
}
