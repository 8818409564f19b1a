import COpenSSL
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain-HTTP upstream for process tests, on 127.0.0.1 with an ephemeral port. It records what
/// it received (request head with every header in order, body length and SHA-256) and answers by
/// path, after any base path:
///
/// | path | answer |
/// |---|---|
/// | `/status/NNN` | status NNN, small JSON body |
/// | `/sse?n=N&interval_ms=M` | `text/event-stream`, N events, each flushed M ms apart, chunked |
/// | `/bytes?n=N` | N bytes of a fixed pattern with `Content-Length`, written as the client reads |
/// | `/upload` | reads the whole body, answers `{"length":L,"sha256":"…"}` |
/// | `/delay-headers?ms=M` | answers after M ms |
/// | `/hang` | never answers |
/// | `/close-after?ms=M` | 200, then closes the idle keep-alive connection after M ms |
/// | `…/chat/completions` | an OpenAI chat completion; SSE chunks and `[DONE]` when the body asks to stream (a usage chunk before `[DONE]` when it asks `include_usage`) |
/// | `…/messages` | an Anthropic message (usage 12 in, 6 out, 3 cache read, 2 cache write); its event stream when the body asks to stream |
/// | `/redirect` | 302 with `Location: /elsewhere` |
/// | `/request-id` | 200 with `x-request-id: upstream-id-1` |
/// | `/gzip` | a gzip body with `Content-Encoding: gzip` |
/// | a path given to `serve(_:_:)` | that canned response |
/// | anything else | 200 `{"ok":true}` with two `Set-Cookie` headers |
public final class MockUpstream: @unchecked Sendable {
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        public var headers: [(String, String)]
        public var bodyLength: Int
        public var bodySHA256: String
        /// The body's first 64 KiB, as text.
        public var bodyText: String = ""

        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        public func headers(named name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
    }

    public static let gzipBody: [UInt8] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57,
        0x28, 0xcf, 0x2f, 0xca, 0x49, 0x01, 0x00, 0x85, 0x11, 0x4a, 0x0d, 0x0b, 0x00, 0x00, 0x00,
    ]

    private let group: MultiThreadedEventLoopGroup
    private var channel: Channel!
    private let state = NIOLockedValueBox(State())

    /// How every request is answered instead of by path, while set (a failing target).
    public enum Failure: Sendable {
        /// This status with a small JSON body.
        case status(Int)
        /// The connection is closed once the request arrived, before any response byte.
        case closeBeforeResponse
        /// No answer at all.
        case hang
        /// A chunked SSE stream (`text/event-stream`) whose connection is closed after N events.
        case cutStream(after: Int)
    }

    /// Set to make every following request fail this way; nil answers by path again.
    public var failure: Failure? {
        get { state.withLockedValue { $0.failure } }
        set { state.withLockedValue { $0.failure = newValue } }
    }

    /// A response given by the test: `pieces` written one after the other, each flushed, chunked
    /// (no `Content-Length`) unless `headers` has one; with `holdOpen`, the response never ends.
    public struct Canned: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var pieces: [[UInt8]]
        public var holdOpen: Bool

        public init(status: Int = 200, headers: [(String, String)], pieces: [[UInt8]], holdOpen: Bool = false) {
            self.status = status
            self.headers = headers
            self.pieces = pieces
            self.holdOpen = holdOpen
        }
    }

    /// Answers requests for `path` (after any base path) with `response`.
    public func serve(_ path: String, _ response: Canned) {
        state.withLockedValue { $0.canned[path] = response }
    }

    struct State {
        var failure: Failure?
        var canned: [String: Canned] = [:]
        var requests: [Request] = []
        var connectionsOpened = 0
        var connectionsClosed = 0
        var abortedResponses = 0
        /// `/delay-headers` requests being answered now, and the most there ever were at once.
        var delayedInFlight = 0
        var maxDelayedInFlight = 0
    }

    public init() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let box = state
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                box.withLockedValue { $0.connectionsOpened += 1 }
                channel.closeFuture.whenComplete { _ in box.withLockedValue { $0.connectionsClosed += 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true)
                    try channel.pipeline.syncOperations.addHandler(MockHandler(state: box))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    public var port: Int { channel.localAddress!.port! }
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var requests: [Request] { state.withLockedValue { $0.requests } }
    public var connectionsOpened: Int { state.withLockedValue { $0.connectionsOpened } }
    public var connectionsClosed: Int { state.withLockedValue { $0.connectionsClosed } }
    /// Responses whose client went away before the mock finished writing them.
    public var abortedResponses: Int { state.withLockedValue { $0.abortedResponses } }
    /// The most `/delay-headers` requests the mock held at once (a concurrency limit's witness).
    public var maxDelayedInFlight: Int { state.withLockedValue { $0.maxDelayedInFlight } }

    /// Waits (bounded) until `condition` holds on the recorded state.
    public func wait(timeout: Double = 10, until condition: (MockUpstream) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(self) { return true }
            usleep(2_000)
        }
        return condition(self)
    }

    public func shutdown() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    deinit { try? group.syncShutdownGracefully() }
}

private final class MockHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: NIOLockedValueBox<MockUpstream.State>
    private var head: HTTPRequestHead?
    private var bodyLength = 0
    /// The first 64 KiB of the body (enough to see `"stream": true` in a chat request).
    private var bodyPrefix: [UInt8] = []
    private var bodyText: String { String(decoding: bodyPrefix, as: UTF8.self) }
    private var digest = SHA256Stream()
    private var pendingBytes = 0
    private var writingBytes = false

    init(state: NIOLockedValueBox<MockUpstream.State>) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyLength = 0
            bodyPrefix = []
            digest = SHA256Stream()
        case .body(let buffer):
            bodyLength += buffer.readableBytes
            if bodyPrefix.count < 65536 { bodyPrefix += buffer.readableBytesView.prefix(65536 - bodyPrefix.count) }
            digest.update(buffer.readableBytesView)
        case .end:
            guard let head else { return }
            let hash = digest.finalHex()
            state.withLockedValue {
                $0.requests.append(
                    .init(
                        method: head.method.rawValue, uri: head.uri,
                        headers: head.headers.map { ($0.name, $0.value) },
                        bodyLength: bodyLength, bodySHA256: hash, bodyText: bodyText))
            }
            respond(to: head, hash: hash, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, hash: String, context: ChannelHandlerContext) {
        let components = URLComponents(string: head.uri)
        let path = components?.path ?? head.uri
        let query = Dictionary((components?.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
        let int = { (name: String, fallback: Int) in query[name].flatMap(Int.init) ?? fallback }

        switch state.withLockedValue({ $0.failure }) {
        case .status(let code)?:
            return send(context, status: .init(statusCode: code), body: Array("{\"status\":\(code)}".utf8))
        case .closeBeforeResponse?:
            return context.close(promise: nil)
        case .hang?:
            return
        case .cutStream(let after)?:
            return streamEvents(context, count: after, intervalMs: 1, cut: true)
        case nil:
            break
        }

        if let canned = state.withLockedValue({ state in state.canned.first { path.hasSuffix($0.key) }?.value }) {
            let headers = HTTPHeaders(canned.headers)
            let status = HTTPResponseStatus(statusCode: canned.status)
            context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: status, headers: headers))), promise: nil)
            for piece in canned.pieces {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: piece)))), promise: nil)
            }
            if canned.holdOpen { context.flush() } else { context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil) }
        } else if let range = path.range(of: "/status/"), let code = Int(path[range.upperBound...]) {
            send(context, status: .init(statusCode: code), body: Array("{\"status\":\(code)}".utf8))
        } else if path.hasSuffix("/sse") {
            streamEvents(context, count: int("n", 5), intervalMs: int("interval_ms", 10))
        } else if path.hasSuffix("/bytes") {
            var headers = HTTPHeaders([("content-type", "application/octet-stream"), ("content-length", String(int("n", 0)))])
            headers.add(name: "x-mock", value: "bytes")
            context.writeAndFlush(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            pendingBytes = int("n", 0)
            writeBytes(context)
        } else if path.hasSuffix("/upload") {
            send(context, status: .ok, body: Array("{\"length\":\(bodyLength),\"sha256\":\"\(hash)\"}".utf8))
        } else if path.hasSuffix("/delay-headers") {
            state.withLockedValue {
                $0.delayedInFlight += 1
                $0.maxDelayedInFlight = max($0.maxDelayedInFlight, $0.delayedInFlight)
            }
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(int("ms", 100)))) {
                self.state.withLockedValue { $0.delayedInFlight -= 1 }
                self.send(context, status: .ok, body: Array("{\"delayed\":true}".utf8))
            }
        } else if path.hasSuffix("/hang") {
            return
        } else if path.hasSuffix("/close-after") {
            // Answers as a keep-alive connection, then closes it while idle: the proxy's pooled
            // connection goes stale without the proxy having sent anything on it.
            send(context, status: .ok, body: Array("{\"closing\":true}".utf8))
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(int("ms", 50)))) { context.close(promise: nil) }
        } else if path.hasSuffix("/chat/completions") {
            let stream = bodyText.contains("\"stream\":true") || bodyText.contains("\"stream\": true")
            openAIChat(context, stream: stream, includeUsage: Self.asksForUsage(bodyText))
        } else if path.hasSuffix("/messages") {
            anthropicMessage(context, stream: bodyText.contains("\"stream\":true") || bodyText.contains("\"stream\": true"))
        } else if path.hasSuffix("/request-id") {
            send(context, status: .ok, body: Array("{}".utf8), extra: [("x-request-id", "upstream-id-1")])
        } else if path.hasSuffix("/redirect") {
            send(context, status: .found, body: [], extra: [("location", "/elsewhere")])
        } else if path.hasSuffix("/gzip") {
            send(context, status: .ok, body: MockUpstream.gzipBody, extra: [("content-encoding", "gzip")], contentType: "text/plain")
        } else {
            send(
                context, status: .ok, body: Array("{\"ok\":true}".utf8),
                extra: [("set-cookie", "a=1; Path=/"), ("set-cookie", "b=2; Path=/"), ("x-upstream", "mock")])
        }
    }

    private func send(
        _ context: ChannelHandlerContext, status: HTTPResponseStatus, body: [UInt8],
        extra: [(String, String)] = [], contentType: String = "application/json"
    ) {
        var headers = HTTPHeaders([("content-type", contentType), ("content-length", String(body.count))])
        for (name, value) in extra { headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func streamEvents(_ context: ChannelHandlerContext, count: Int, intervalMs: Int, cut: Bool = false) {
        let headers = HTTPHeaders([("content-type", "text/event-stream"), ("cache-control", "no-cache")])
        context.writeAndFlush(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        func event(_ index: Int) {
            guard context.channel.isActive else {
                state.withLockedValue { $0.abortedResponses += 1 }
                return
            }
            if index == count {
                if cut {
                    context.close(promise: nil)
                } else {
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                }
                return
            }
            let text = "data: {\"index\":\(index),\"sent_ns\":\(DispatchTime.now().uptimeNanoseconds)}\n\n"
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(intervalMs))) { event(index + 1) }
        }
        event(0)
    }

    /// `stream_options.include_usage` is `true` in the request body, as OpenAI reads it.
    static func asksForUsage(_ body: String) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let options = object["stream_options"] as? [String: Any]
        else { return false }
        return options["include_usage"] as? Bool == true
    }

    /// An OpenAI-compatible chat completion, whole or as SSE chunks ending in `data: [DONE]`; with
    /// `include_usage`, as OpenAI does it, every chunk carries `"usage":null` and a usage-only
    /// chunk (`choices: []`) comes before `[DONE]`. `created` is fixed, so that two streams
    /// compare byte for byte.
    private func openAIChat(_ context: ChannelHandlerContext, stream: Bool, includeUsage: Bool = false) {
        let created = 1_700_000_000
        let nullUsage = includeUsage ? ",\"usage\":null" : ""
        guard stream else {
            let body = """
                {"id":"chatcmpl-mock","object":"chat.completion","created":\(created),"model":"gpt-mock",\
                "choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock."},\
                "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}
                """
            send(context, status: .ok, body: Array(body.utf8))
            return
        }
        let headers = HTTPHeaders([("content-type", "text/event-stream"), ("cache-control", "no-cache")])
        context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        for (index, word) in ["Hello", " from", " the", " mock."].enumerated() {
            let role = index == 0 ? "\"role\":\"assistant\"," : ""
            let event =
                "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":\(created),"
                + "\"model\":\"gpt-mock\",\"choices\":[{\"index\":0,\"delta\":{\(role)\"content\":\"\(word)\"},\"finish_reason\":null}]\(nullUsage)}\n\n"
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: event)))), promise: nil)
        }
        let last =
            "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":\(created),"
            + "\"model\":\"gpt-mock\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]\(nullUsage)}\n\n"
            + (includeUsage
                ? "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":\(created),"
                    + "\"model\":\"gpt-mock\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":4,\"total_tokens\":9}}\n\n"
                : "")
            + "data: [DONE]\n\n"
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: last)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// An Anthropic Messages response, whole or as its event stream (message_start with the input
    /// and cache counts, text deltas, a cumulative message_delta).
    private func anthropicMessage(_ context: ChannelHandlerContext, stream: Bool) {
        let message =
            "{\"id\":\"msg_mock\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-mock\","
        guard stream else {
            let body =
                message + "\"content\":[{\"type\":\"text\",\"text\":\"Hello from the mock.\"}],"
                + "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,"
                + "\"cache_read_input_tokens\":3,\"cache_creation_input_tokens\":2,\"output_tokens\":6}}"
            send(context, status: .ok, body: Array(body.utf8))
            return
        }
        let headers = HTTPHeaders([("content-type", "text/event-stream"), ("cache-control", "no-cache")])
        context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        var events = [
            (
                "message_start",
                "{\"type\":\"message_start\",\"message\":" + message + "\"content\":[],\"stop_reason\":null,"
                    + "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":3,"
                    + "\"cache_creation_input_tokens\":2,\"output_tokens\":1}}}"
            ),
            (
                "content_block_start",
                "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"
            ),
        ]
        for word in ["Hello", " from", " the", " mock."] {
            events.append(
                (
                    "content_block_delta",
                    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\(word)\"}}"
                ))
        }
        events += [
            ("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"),
            (
                "message_delta",
                "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
                    + "\"usage\":{\"output_tokens\":6}}"
            ),
            ("message_stop", "{\"type\":\"message_stop\"}"),
        ]
        for (name, data) in events {
            let text = "event: \(name)\ndata: \(data)\n\n"
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Writes the byte pattern while the channel is writable (backpressure: a slow reader pauses us).
    private func writeBytes(_ context: ChannelHandlerContext) {
        while pendingBytes > 0 && context.channel.isWritable {
            let n = min(pendingBytes, 64 * 1024)
            var buffer = context.channel.allocator.buffer(capacity: n)
            buffer.writeBytes(MockPattern.slice(count: n))
            pendingBytes -= n
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if pendingBytes == 0 {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && pendingBytes > 0 { writeBytes(context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if pendingBytes > 0 { state.withLockedValue { $0.abortedResponses += 1 } }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// The repeating byte pattern the mock streams; `hashOf(count:)` gives the expected digest.
public enum MockPattern {
    public static let block: [UInt8] = (0..<(64 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    static func slice(count: Int) -> ArraySlice<UInt8> { block[0..<count] }

    public static func sha256(ofCount count: Int) -> String {
        var digest = SHA256Stream()
        var left = count
        while left > 0 {
            let n = min(left, block.count)
            digest.update(block[0..<n])
            left -= n
        }
        return digest.finalHex()
    }
}

/// Incremental SHA-256 through the system OpenSSL (EVP).
public final class SHA256Stream {
    private var context: OpaquePointer

    deinit { EVP_MD_CTX_free(context) }

    public init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    public func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let done = bytes.withContiguousStorageIfAvailable { EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        if done == nil {
            let copy = Array(bytes)
            copy.withUnsafeBufferPointer { _ = EVP_DigestUpdate(context, $0.baseAddress, $0.count) }
        }
    }

    public func finalHex() -> String {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        EVP_DigestInit_ex(context, EVP_sha256(), nil)  // ready for reuse
        return out.map { String(format: "%02x", $0) }.joined()
    }
}
