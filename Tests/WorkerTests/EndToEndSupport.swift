import Common
import Logging
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1
import NIOPosix
@testable import FluxgateWorker

/// What the mock upstream does with a request.
enum InProcessMockBehaviour: Sendable {
    /// Echo: 200, JSON-ish body describing the request, two Set-Cookie headers.
    case echo
    /// Head, then `chunks` flushed one by one `gapMs` apart, chunked.
    case stream(chunks: [String], gapMs: Int64)
    /// Never answer.
    case silent
    /// Answer, then close the connection `afterMs` later without saying so.
    case echoThenCloseAfter(ms: Int64)
}

/// A recorded request, as the upstream saw it.
struct SeenRequest: Sendable {
    var head: HTTPRequestHead
    var body: String
}

/// A tiny NIO HTTP/1.1 upstream on 127.0.0.1 with a behaviour, recording requests and connections.
final class LockedBox<Value: Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { value in body(&value) } }
}

final class InProcessMockUpstream: Sendable {
    let channel: Channel
    private let recorded: LockedBox<(requests: [SeenRequest], connections: Int)>

    var port: Int { channel.localAddress!.port! }
    var requests: [SeenRequest] { recorded.withLock { $0.requests } }
    var connections: Int { recorded.withLock { $0.connections } }

    init(group: EventLoopGroup, behaviour: InProcessMockBehaviour) async throws {
        let box = LockedBox<(requests: [SeenRequest], connections: Int)>(([], 0))
        self.recorded = box
        self.channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                box.withLock { $0.connections += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(InProcessMockHandler(behaviour: behaviour, box: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func close() async { try? await channel.close() }
}

private final class InProcessMockHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let behaviour: InProcessMockBehaviour
    let box: LockedBox<(requests: [SeenRequest], connections: Int)>
    var head: HTTPRequestHead?
    var body = ""

    init(behaviour: InProcessMockBehaviour, box: LockedBox<(requests: [SeenRequest], connections: Int)>) {
        self.behaviour = behaviour
        self.box = box
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h; body = ""
        case .body(var b): body += b.readString(length: b.readableBytes) ?? ""
        case .end: respond(context: context)
        }
    }

    func respond(context: ChannelHandlerContext) {
        guard let head else { return }
        let seen = SeenRequest(head: head, body: body)
        box.withLock { $0.requests.append(seen) }
        switch behaviour {
        case .silent:
            return
        case .echo, .echoThenCloseAfter:
            let text = "\(head.method.rawValue) \(head.uri) body=\(body)"
            var headers: HTTPHeaders = [
                "content-length": String(text.utf8.count), "set-cookie": "a=1",
                "set-cookie": "b=2", "x-upstream": "mock",
            ]
            if head.method == .HEAD { headers.replaceOrAdd(name: "content-length", value: "999") }
            context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if case .echoThenCloseAfter(let ms) = behaviour {
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(ms)) { context.close(promise: nil) }
            }
        case .stream(let chunks, let gap):
            let headers: HTTPHeaders = ["content-type": "text/event-stream", "transfer-encoding": "chunked"]
            context.writeAndFlush(
                wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))),
                promise: nil)
            for (i, chunk) in chunks.enumerated() {
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(gap * Int64(i + 1))) {
                    context.writeAndFlush(
                        self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: chunk)))),
                        promise: nil)
                    if i == chunks.count - 1 { context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil) }
                }
            }
        }
    }
}

/// A raw TCP client: sends bytes, collects what comes back with arrival times.
final class InProcessClient: Sendable {
    let channel: Channel
    private let collected: LockedBox<(bytes: [UInt8], events: [(NIODeadline, Int)], closed: Bool)>

    init(group: EventLoopGroup, port: Int) async throws {
        let box = LockedBox<(bytes: [UInt8], events: [(NIODeadline, Int)], closed: Bool)>(([], [], false))
        self.collected = box
        self.channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(box: box))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(string: text)).get()
    }

    var text: String { collected.withLock { String(decoding: $0.bytes, as: UTF8.self) } }
    var isClosed: Bool { collected.withLock { $0.closed } }
    /// Time at which the received text first contained `needle`.
    func arrival(of needle: String) -> NIODeadline? {
        collected.withLock { state in
            var seen = [UInt8]()
            var offset = 0
            for (time, count) in state.events {
                seen.append(contentsOf: state.bytes[offset..<offset + count])
                offset += count
                if String(decoding: seen, as: UTF8.self).contains(needle) { return time }
            }
            return nil
        }
    }

    /// Polls until `condition` holds on the received text or the connection closed, at most `timeoutMs`.
    @discardableResult
    func wait(timeoutMs: Int = 5000, until condition: @escaping @Sendable (String) -> Bool) async -> String {
        let deadline = NIODeadline.now() + .milliseconds(Int64(timeoutMs))
        while NIODeadline.now() < deadline {
            let (t, closed) = collected.withLock { (String(decoding: $0.bytes, as: UTF8.self), $0.closed) }
            if condition(t) || closed { return t }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return text
    }

    /// Waits for `count` complete responses (by content-length or chunked terminator) — simple
    /// heuristic for tests: waits until `count` occurrences of `marker`.
    func waitForResponses(_ count: Int, marker: String = "HTTP/1.1 ", timeoutMs: Int = 5000) async -> String {
        await wait(timeoutMs: timeoutMs) { $0.components(separatedBy: marker).count - 1 >= count && Self.lastComplete($0) }
    }

    static func lastComplete(_ text: String) -> Bool {
        guard let headEnd = text.range(of: "\r\n\r\n", options: .backwards) else { return false }
        let lastHeadStart = text.range(of: "HTTP/1.1 ", options: .backwards)!.lowerBound
        let head = text[lastHeadStart..<text.endIndex]
        guard let end = head.range(of: "\r\n\r\n") else { return false }
        let headers = head[..<end.lowerBound].lowercased()
        let body = head[end.upperBound...]
        if let line = headers.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let n = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        {
            return body.utf8.count >= n || headers.hasPrefix("http/1.1 200") && headers.contains("head-request")
        }
        if headers.contains("transfer-encoding: chunked") { return body.hasSuffix("0\r\n\r\n") }
        _ = headEnd
        return true
    }

    func close() async { try? await channel.close() }
}

private final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let box: LockedBox<(bytes: [UInt8], events: [(NIODeadline, Int)], closed: Bool)>
    init(box: LockedBox<(bytes: [UInt8], events: [(NIODeadline, Int)], closed: Bool)>) { self.box = box }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(buffer: unwrapInboundIn(data))
        box.withLock {
            $0.bytes += bytes; $0.events.append((.now(), bytes.count))
        }
    }
    func channelInactive(context: ChannelHandlerContext) { box.withLock { $0.closed = true } }
}

/// A log handler that records `Request processed` lines' metadata.
final class RecordingLog: Sendable {
    let lines = LockedBox<[(message: String, metadata: Logger.Metadata)]>([])

    var logger: Logger {
        let lines = self.lines
        var logger = Logger(label: "test") { _ in RecordingHandler(lines: lines) }
        logger.logLevel = .trace
        return logger
    }

    var requestLines: [Logger.Metadata] {
        lines.withLock { $0.filter { $0.message == "Request processed" }.map(\.metadata) }
    }
}

private struct RecordingHandler: LogHandler {
    let lines: LockedBox<[(message: String, metadata: Logger.Metadata)]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        lines.withLock { $0.append((event.message.description, event.metadata ?? [:])) }
    }
}

/// A started worker in front of a mock upstream, torn down by `stop()`.
struct ProxyHarness {
    let group: MultiThreadedEventLoopGroup
    let upstream: InProcessMockUpstream
    let server: WorkerServer
    let log: RecordingLog
    /// What the worker started with (tests change it and `server.apply` it, as a reload does).
    let configuration: Configuration
    /// The test's own pipeline stage, if it has one.
    var stage: RequestStage?

    static func start(
        behaviour: InProcessMockBehaviour = .echo, requestPath: String = "/api",
        staticKeys: [Configuration.StaticKey] = [], requestTimeoutMs: UInt64 = 5_000,
        maxConnections: UInt32 = 1024, limits: WorkerLimits = WorkerLimits(),
        extraUpstreams: [Configuration.Upstream] = [],
        stage makeStage: ((InProcessMockUpstream) -> RequestStage)? = nil,
        responseObservers: (@Sendable (RequestHead) -> ResponseObserver?)? = nil
    ) async throws -> ProxyHarness {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let upstream = try await InProcessMockUpstream(group: group, behaviour: behaviour)
        var configuration = Fixtures.configuration(
            upstreams: [
                Fixtures.upstream(
                    "mock", requestPath,
                    Fixtures.url(.http, "127.0.0.1", port: UInt16(upstream.port), path: "/base"),
                    key: "sk-provider")
            ] + extraUpstreams,
            staticKeys: staticKeys)
        configuration.upstreams.requestTimeoutMs = requestTimeoutMs
        configuration.server.maxConnections = maxConnections
        let log = RecordingLog()
        // A test's own stage runs after routing.
        let stage = makeStage?(upstream)
        let pipeline = stage.map { RequestPipeline.standard().inserting($0, after: "route") } ?? .standard()
        let server = try await WorkerServer.start(
            listener: .bind(BindAddress(parsing: "127.0.0.1:0")!), configuration: configuration,
            logger: log.logger, limits: limits, pipeline: pipeline, responseObservers: responseObservers)
        return ProxyHarness(
            group: group, upstream: upstream, server: server, log: log, configuration: configuration,
            stage: stage)
    }

    var port: Int { server.localAddress!.port! }

    func client() async throws -> InProcessClient { try await InProcessClient(group: group, port: port) }

    func stop() async {
        await server.shutdown(gracePeriod: .milliseconds(100))
        await upstream.close()
        try? await group.shutdownGracefully()
    }
}
