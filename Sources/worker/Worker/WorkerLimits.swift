import NIOCore

/// Limits of the client side of a worker. Not configurable from the YAML file yet; these are the
/// documented defaults (docs/routing-and-forwarding.md) and tests shrink them.
struct WorkerLimits: Sendable, Hashable {
    /// Longest request-target accepted, in bytes (→ 414). nginx's default line buffer is 8 KiB.
    var maxRequestTargetBytes = 8 * 1024
    /// Sum of header name and value bytes of one request (→ 431).
    var maxHeaderBytes = 32 * 1024
    /// Header lines in one request (→ 431).
    var maxHeaderCount = 100
    /// From the first byte of a request head until the whole head has arrived (slowloris guard).
    var headerReadTimeoutMs: Int64 = 30_000
    /// A keep-alive connection with no request in progress is closed after this long.
    var idleKeepAliveTimeoutMs: Int64 = 75_000
    /// After a response that did not wait for the whole request body (a rejection, or an
    /// upstream that answered early), the rest of the body must arrive within this long, or the
    /// connection is closed (nginx's `lingering_time`).
    var bodyDiscardTimeoutMs: Int64 = 30_000
    /// TCP connect to an upstream.
    var upstreamConnectTimeoutMs: Int64 = 10_000
    /// From TCP connect (upstream) or accept (listener) to a completed TLS handshake.
    var tlsHandshakeTimeoutMs: Int64 = 10_000
    /// Idle keep-alive connections kept per upstream origin per worker.
    var maxIdleConnectionsPerOrigin = 64
    /// An idle pooled upstream connection is closed after this long, below the keep-alive timeout
    /// of common servers (nginx 75 s, Node 5 s is the outlier) to avoid reusing half-dead sockets.
    var upstreamIdleTimeoutMs: Int64 = 4_000
    /// While a request may still be retried on a fresh connection (see `ProxyExchange`), the
    /// request bytes already sent are kept up to this many bytes.
    var replayBufferBytes = Self.defaultReplayBufferBytes
    static let defaultReplayBufferBytes = 64 * 1024

    init() {}

    /// What the request parser needs of these.
    var parser: RequestParser.Limits {
        RequestParser.Limits(
            maxRequestTargetBytes: maxRequestTargetBytes, maxHeaderBytes: maxHeaderBytes,
            maxHeaderCount: maxHeaderCount)
    }

    /// Socket reads on both sides of a relay start at 16 KiB and grow to 64 KiB under a fast
    /// stream (NIO's default starts at 2 KiB, which costs many small reads and writes per
    /// large body). A buffer exists only during a read, so idle connections hold none.
    static let relayReadAllocator = AdaptiveRecvByteBufferAllocator(minimum: 16 * 1024, initial: 16 * 1024, maximum: 64 * 1024)
}
