import NIOCore
import Testing
@testable import FluxgateWorker

/// Records what the tap reports for each response (touched on the worker's loop only; read by
/// the test once the response is over).
private final class RecordingObserver: ResponseObserver, @unchecked Sendable {
    let box: LockedBox<(status: UInt?, contentType: String?, payload: [UInt8], ended: [Bool])>

    init(box: LockedBox<(status: UInt?, contentType: String?, payload: [UInt8], ended: [Bool])>) { self.box = box }

    func responseHead(_ facts: ResponseFacts) {
        let status = facts.status
        let type = facts.contentType
        box.withLock {
            $0.status = status; $0.contentType = type
        }
    }

    func responsePayload(_ bytes: UnsafeRawBufferPointer) {
        let copy = Array(bytes)
        box.withLock { $0.payload += copy }
    }

    func responseEnded(complete: Bool) { box.withLock { $0.ended.append(complete) } }
}

/// The tap on the upstream response through a real connection: an observer the worker attaches
/// to every forwarded request sees the head's facts, the payload without chunk framing, and how
/// the response ended, while the client gets the upstream's bytes.
@Suite(.serialized) struct ResponseTapTests {
    typealias Seen = (status: UInt?, contentType: String?, payload: [UInt8], ended: [Bool])

    static func harness(_ behaviour: InProcessMockBehaviour, box: LockedBox<Seen>) async throws -> ProxyHarness {
        try await ProxyHarness.start(behaviour: behaviour, responseObservers: { _ in RecordingObserver(box: box) })
    }

    @Test func aChunkedStreamIsSeenWithoutItsFramingAndEndsComplete() async throws {
        let box = LockedBox<Seen>((nil, nil, [], []))
        let chunks = (0..<5).map { "data: {\"n\":\($0)}\n\n" }
        let proxy = try await Self.harness(.stream(chunks: chunks, gapMs: 20), box: box)
        let client = try await proxy.client()
        try await client.send("GET /api/stream HTTP/1.1\r\nHost: p\r\n\r\n")
        let text = await client.wait(timeoutMs: 10_000) { $0.hasSuffix("0\r\n\r\n") }
        #expect(text.contains("transfer-encoding: chunked"))
        let seen = box.withLock { $0 }
        #expect(seen.status == 200)
        #expect(seen.contentType == "text/event-stream")
        #expect(String(decoding: seen.payload, as: UTF8.self) == chunks.joined())
        #expect(seen.ended == [true])
        await client.close()
        await proxy.stop()
    }

    @Test func aContentLengthBodyIsSeenWhole() async throws {
        let box = LockedBox<Seen>((nil, nil, [], []))
        let proxy = try await Self.harness(.echo, box: box)
        let client = try await proxy.client()
        try await client.send("POST /api/x HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhello")
        let text = await client.waitForResponses(1)
        #expect(text.hasSuffix("POST /base/x body=hello"))
        #expect(String(decoding: box.withLock { $0.payload }, as: UTF8.self) == "POST /base/x body=hello")
        #expect(box.withLock { $0.ended } == [true])
        await client.close()
        await proxy.stop()
    }

    @Test func aClientThatLeavesMidStreamIsReportedAsACut() async throws {
        let box = LockedBox<Seen>((nil, nil, [], []))
        // 20 s of stream: it cannot end on its own before the client's close has been heard, however
        // slowly a loaded machine runs this test (with 2 s of stream, a busy CI saw it end first).
        let chunks = (0..<1000).map { "data: \($0)\n\n" }
        let proxy = try await Self.harness(.stream(chunks: chunks, gapMs: 20), box: box)
        let client = try await proxy.client()
        try await client.send("GET /api/stream HTTP/1.1\r\nHost: p\r\n\r\n")
        _ = await client.wait(timeoutMs: 10_000) { $0.contains("data: 2\n") }
        await client.close()
        // The worker hears the close on its loop; the observer is told once.
        let deadline = NIODeadline.now() + .seconds(10)
        while box.withLock({ $0.ended.isEmpty }), NIODeadline.now() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(box.withLock { $0.ended } == [false])
        await proxy.stop()
    }
}
