import Common
import Foundation
import NIOCore
import Testing
@testable import FluxgateWorker

/// The client connection's deadlines: the header timeout from acceptance, the keep-alive timeout
/// between requests, neither of them during a request, and the body discard time after a
/// response that did not wait for the request body. Each test makes only the deadline it
/// watches short, so a slow test machine cannot trip another one first. (A head that stops
/// midway is `ProtocolProcessTests.silentConnectionIsClosedAfterTheHeaderTimeout`: with a short
/// header timeout here, a loaded machine could let it expire before the test's first bytes.)
@Suite(.serialized) struct ConnectionDeadlineTests {
    static func limits(headerMs: Int64, keepAliveMs: Int64) -> WorkerLimits {
        var limits = WorkerLimits()
        limits.headerReadTimeoutMs = headerMs
        limits.idleKeepAliveTimeoutMs = keepAliveMs
        return limits
    }

    @Test func aConnectionThatSendsNothingIsClosedAfterTheHeaderTimeout() async throws {
        let proxy = try await ProxyHarness.start(limits: Self.limits(headerMs: 300, keepAliveMs: 60_000))
        // Taken before connecting: the deadline starts at the accept, which comes after.
        let start = NIODeadline.now()
        let client = try await proxy.client()
        let text = await client.wait(timeoutMs: 10_000) { _ in false }
        #expect(client.isClosed)
        #expect(text.isEmpty)
        #expect(NIODeadline.now() - start >= .milliseconds(250))
        await proxy.stop()
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheKeepAliveTimeout() async throws {
        let proxy = try await ProxyHarness.start(limits: Self.limits(headerMs: 60_000, keepAliveMs: 300))
        let client = try await proxy.client()
        // Taken before sending: the keep-alive deadline starts after the response, which comes after.
        let sent = NIODeadline.now()
        try await client.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\r\n")
        #expect(await client.waitForResponses(1).hasPrefix("HTTP/1.1 200 OK\r\n"))
        _ = await client.wait(timeoutMs: 10_000) { _ in false }
        #expect(client.isClosed)
        #expect(NIODeadline.now() - sent >= .milliseconds(250))
        await proxy.stop()
    }

    /// A response that takes longer than the keep-alive timeout (chunks 250 ms apart, 3 s in all)
    /// is not cut by it: during a request only the exchange's deadlines run.
    @Test func aLongResponseIsNotCutByTheConnectionTimeouts() async throws {
        let chunks = (0..<12).map { "data: \($0)\n\n" }
        let proxy = try await ProxyHarness.start(
            behaviour: .stream(chunks: chunks, gapMs: 250),
            limits: Self.limits(headerMs: 60_000, keepAliveMs: 300))
        let client = try await proxy.client()
        try await client.send("GET /api/stream HTTP/1.1\r\nHost: p\r\n\r\n")
        let text = await client.wait(timeoutMs: 20_000) { $0.hasSuffix("0\r\n\r\n") }
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(chunks.allSatisfy { text.contains($0) })
        #expect(text.hasSuffix("0\r\n\r\n"))
        await client.close()
        await proxy.stop()
    }

    /// After a rejection that did not wait for the announced body, a client that stops sending
    /// it is closed after the body discard time; one that finishes it keeps its connection.
    @Test func aBodyThatNeverEndsAfterARejectionIsDroppedWithTheConnection() async throws {
        var limits = WorkerLimits()
        limits.bodyDiscardTimeoutMs = 300
        let proxy = try await ProxyHarness.start(staticKeys: [.init(id: "alice", key: Secret("sk-alice"))], limits: limits)
        let stalled = try await proxy.client()
        try await stalled.send("POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 100\r\n\r\nabc")
        #expect(await stalled.waitForResponses(1).hasPrefix("HTTP/1.1 401 "))
        _ = await stalled.wait(timeoutMs: 10_000) { _ in false }
        #expect(stalled.isClosed)

        let finished = try await proxy.client()
        try await finished.send("POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\n")
        #expect(await finished.waitForResponses(1).hasPrefix("HTTP/1.1 401 "))
        try await finished.send("abcGET /api/y HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer sk-alice\r\n\r\n")
        #expect(await finished.waitForResponses(2).contains("HTTP/1.1 200 OK\r\n"))
        #expect(!finished.isClosed)
        await finished.close()
        #expect(proxy.upstream.requests.map(\.head.uri) == ["/base/y"])
        await proxy.stop()
    }
}
