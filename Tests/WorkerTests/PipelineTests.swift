import Common
import NIOCore
import Testing
@testable import FluxgateWorker

/// A stage that waits: answers each POST `delay` after it ran, with `verdict`, and notes how many
/// requests the upstream had seen by then.
private final class DelayedStage: RequestStage, @unchecked Sendable {
    let name = "test-delay"
    let delay: TimeAmount
    let verdict: StageVerdict
    let upstream: InProcessMockUpstream
    let seenAtAnswer = LockedBox<[Int]>([])

    init(delay: TimeAmount, verdict: StageVerdict = .proceed, upstream: InProcessMockUpstream) {
        self.delay = delay
        self.verdict = verdict
        self.upstream = upstream
    }

    func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        guard head.method == .POST else { return .proceed }
        let suspension = StageSuspension()
        worker.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            let seen = upstream.requests.count
            seenAtAnswer.withLock { $0.append(seen) }
            suspension.resume(verdict)
        }
        return .suspend(suspension)
    }
}

/// A stage that asks for the first `bytes` of every body and records what it was given.
private final class PeekingStage: RequestStage, @unchecked Sendable {
    let name = "test-peek"
    let bytes: Int
    let seen = LockedBox<[(body: String, complete: Bool)]>([])

    init(bytes: Int) { self.bytes = bytes }

    func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        guard let body = request.body else { return .needBody(bytes: bytes) }
        let text = String(buffer: body)
        let complete = request.bodyComplete
        seen.withLock { $0.append((text, complete)) }
        return .proceed
    }
}

/// A stage that asks for `first` bytes, then for `second`, and records the lengths it was given.
private final class AskingTwiceStage: RequestStage, @unchecked Sendable {
    let name = "test-ask-twice"
    let first: Int
    let second: Int
    let seen = LockedBox<[String]>([])

    init(first: Int, second: Int) {
        self.first = first
        self.second = second
    }

    func run(_ request: PipelineRequest, head: RequestHead, worker: WorkerContext) -> StageVerdict {
        guard let body = request.body else { return .needBody(bytes: first) }
        seen.withLock { $0.append(String(buffer: body)) }
        if body.readableBytes < second && !request.bodyComplete { return .needBody(bytes: second) }
        return .proceed
    }
}

/// Stages that wait for an answer or for body bytes, through a real connection: the request's
/// later parts wait, nothing reaches the upstream early, and every body byte arrives unchanged.
@Suite(.serialized) struct PipelineTests {
    /// The request timeout: far beyond what the tests take, so a starved test machine cannot
    /// turn a slow answer into a 504.
    static let generous: UInt64 = 60_000

    static func body(_ count: Int) -> String {
        String((0..<count).map { i in Character(UnicodeScalar(UInt8(97 + i % 26))) })
    }

    @Test func aStageThatWaitsHoldsTheRequestAndItsBodyThenGoesOn() async throws {
        // The stage watches the harness's own upstream, so it is made with it.
        let proxy = try await ProxyHarness.start(requestTimeoutMs: Self.generous) { upstream in
            DelayedStage(delay: .milliseconds(300), upstream: upstream)
        }
        let delayed = proxy.stage as! DelayedStage
        let client = try await proxy.client()
        let body = Self.body(3000)
        let started = NIODeadline.now()
        // The head and part of the body, then the rest while the stage waits, then a pipelined GET.
        try await client.send("POST /api/chat HTTP/1.1\r\nHost: p\r\nContent-Length: 3000\r\n\r\n" + body.prefix(1000))
        try await Task.sleep(nanoseconds: 50_000_000)
        try await client.send(String(body.dropFirst(1000)) + "GET /api/next HTTP/1.1\r\nHost: p\r\n\r\n")
        let text = await client.waitForResponses(2, timeoutMs: 10_000)
        #expect(NIODeadline.now() - started >= .milliseconds(300))
        // Answered in order: the POST's echo (its whole body), then the GET's.
        let post = try #require(text.range(of: "POST /base/chat body="))
        let get = try #require(text.range(of: "GET /base/next body="))
        #expect(post.lowerBound < get.lowerBound)
        #expect(delayed.seenAtAnswer.withLock { $0 } == [0])
        let requests = proxy.upstream.requests
        #expect(requests.map(\.head.uri) == ["/base/chat", "/base/next"])
        #expect(requests.first?.body == body)
        await client.close()
        await proxy.stop()
    }

    @Test func aStageThatAnswersWithARejectionKeepsTheConnection() async throws {
        let proxy = try await ProxyHarness.start(requestTimeoutMs: Self.generous) { upstream in
            DelayedStage(delay: .milliseconds(100), verdict: .reject(.noRoute), upstream: upstream)
        }
        let client = try await proxy.client()
        try await client.send("POST /api/chat HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhello")
        let first = await client.waitForResponses(1)
        #expect(first.hasPrefix("HTTP/1.1 404 "))
        // The body was read and dropped: the connection carries the next request.
        try await client.send("GET /api/after HTTP/1.1\r\nHost: p\r\n\r\n")
        let both = await client.waitForResponses(2)
        #expect(both.contains("GET /base/after body="))
        #expect(!client.isClosed)
        #expect(proxy.upstream.requests.map(\.head.uri) == ["/base/after"])
        #expect(proxy.log.requestLines.first?["status"] == .stringConvertible(404))
        await client.close()
        await proxy.stop()
    }

    @Test func aStageThatAsksForBodyBytesGetsThemAndTheUpstreamStillGetsEveryByte() async throws {
        let proxy = try await ProxyHarness.start(requestTimeoutMs: Self.generous) { _ in PeekingStage(bytes: 1000) }
        let peeking = proxy.stage as! PeekingStage
        let client = try await proxy.client()
        let body = Self.body(5000)
        // Chunked, in small pieces, after `100 Continue`.
        try await client.send("POST /api/chat HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        #expect(await client.wait { $0.contains("HTTP/1.1 100 Continue\r\n\r\n") }.contains("100 Continue"))
        var offset = body.startIndex
        while offset < body.endIndex {
            let end = body.index(offset, offsetBy: 300, limitedBy: body.endIndex) ?? body.endIndex
            let piece = body[offset..<end]
            try await client.send(String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n")
            offset = end
        }
        try await client.send("0\r\n\r\n")
        let text = await client.waitForResponses(2, timeoutMs: 10_000)
        #expect(text.contains("HTTP/1.1 200 OK"))
        let seen = peeking.seen.withLock { $0 }
        #expect(seen.count == 1)
        if let first = seen.first {
            #expect(first.body.utf8.count >= 1000)
            #expect(body.hasPrefix(first.body))
            #expect(!first.complete)
        }
        #expect(proxy.upstream.requests.first?.body == body)
        await client.close()
        await proxy.stop()
    }

    @Test func aStageThatAsksAgainGetsTheWholePrefixAndTheUpstreamEveryByte() async throws {
        let proxy = try await ProxyHarness.start(requestTimeoutMs: Self.generous) { _ in AskingTwiceStage(first: 100, second: 2500) }
        let stage = proxy.stage as! AskingTwiceStage
        let client = try await proxy.client()
        let body = Self.body(3000)
        try await client.send("POST /api/chat HTTP/1.1\r\nHost: p\r\nContent-Length: 3000\r\n\r\n" + body.prefix(200))
        // The first look, at the 200 bytes there are, before the rest is sent.
        _ = await client.wait(timeoutMs: 10_000) { _ in stage.seen.withLock { $0.count } == 1 }
        #expect(stage.seen.withLock { $0.map(\.utf8.count) } == [200])
        try await client.send(String(body.dropFirst(200)))
        let text = await client.waitForResponses(1, timeoutMs: 10_000)
        #expect(text.contains("HTTP/1.1 200 OK"))
        let seen = stage.seen.withLock { $0 }
        #expect(seen.count == 2)
        // Each look starts at the body's first byte.
        #expect(seen.allSatisfy { body.hasPrefix($0) })
        #expect((seen.last?.utf8.count ?? 0) >= 2500)
        #expect(proxy.upstream.requests.first?.body == body)
        await client.close()
        await proxy.stop()
    }

    @Test func aBodyShorterThanWhatTheStageAskedForIsGivenWhole() async throws {
        let proxy = try await ProxyHarness.start(requestTimeoutMs: Self.generous) { _ in PeekingStage(bytes: 1000) }
        let peeking = proxy.stage as! PeekingStage
        let client = try await proxy.client()
        try await client.send("POST /api/chat HTTP/1.1\r\nHost: p\r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}")
        let text = await client.waitForResponses(1)
        #expect(text.contains(#"body={"a":"bcd"}"#))
        #expect(peeking.seen.withLock { $0.map(\.body) } == [#"{"a":"bcd"}"#])
        #expect(peeking.seen.withLock { $0.map(\.complete) } == [true])
        // A request without a body: the stage is told at once that the body is empty and whole.
        try await client.send("GET /api/x HTTP/1.1\r\nHost: p\r\n\r\n")
        _ = await client.waitForResponses(2)
        #expect(peeking.seen.withLock { $0.map(\.complete) } == [true, true])
        await client.close()
        await proxy.stop()
    }
}
