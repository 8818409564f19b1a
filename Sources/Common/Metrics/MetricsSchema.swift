/// The fixed parts of the metrics (docs/observability.md "Metrics"): histogram buckets, the
/// bounded label sets, and how configured names become the 64-bit series keys that workers
/// count under. Shared by the worker (which counts) and the master (which renders).
///
/// Adding a metric (docs/architecture.md "Adding a metric"): give it words in
/// `MetricsRegion.Layout` (a header counter, an upstream word, or a new table), count it from
/// `WorkerMetrics.record` using a value already in `RequestFacts`, sum it in `MetricsTotals`,
/// and print it in `MetricsRenderer`; document it in docs/observability.md.
public enum MetricsSchema {
    /// `fluxgate_request_duration_seconds` and `fluxgate_upstream_response_seconds`, in seconds.
    public static let durationBuckets: [Double] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
    ]
    /// `fluxgate_overhead_seconds`: from 10 µs.
    public static let overheadBuckets: [Double] = [
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    ]
    /// The same bounds in nanoseconds, for the worker's bucket search.
    public static let durationBoundsNs: [Int64] = durationBuckets.map { Int64(($0 * 1e9).rounded()) }
    public static let overheadBoundsNs: [Int64] = overheadBuckets.map { Int64(($0 * 1e9).rounded()) }

    /// The bucket of a `durationBuckets` histogram for `ns`: the first bound not below it (15 =
    /// +Inf). Literal constants, not `durationBoundsNs`: a search through the static array paid a
    /// `swift_once` check and a retain per request (docs/performance.md); `MetricsScheduleTests`
    /// checks both agree.
    @inline(__always) public static func durationBucket(_ ns: Int64) -> Int {
        if ns <= 5_000_000 { return 0 }
        if ns <= 10_000_000 { return 1 }
        if ns <= 25_000_000 { return 2 }
        if ns <= 50_000_000 { return 3 }
        if ns <= 100_000_000 { return 4 }
        if ns <= 250_000_000 { return 5 }
        if ns <= 500_000_000 { return 6 }
        if ns <= 1_000_000_000 { return 7 }
        if ns <= 2_500_000_000 { return 8 }
        if ns <= 5_000_000_000 { return 9 }
        if ns <= 10_000_000_000 { return 10 }
        if ns <= 30_000_000_000 { return 11 }
        if ns <= 60_000_000_000 { return 12 }
        if ns <= 120_000_000_000 { return 13 }
        if ns <= 300_000_000_000 { return 14 }
        return 15
    }

    /// The same for `overheadBuckets` (13 = +Inf).
    @inline(__always) public static func overheadBucket(_ ns: Int64) -> Int {
        if ns <= 10_000 { return 0 }
        if ns <= 25_000 { return 1 }
        if ns <= 50_000 { return 2 }
        if ns <= 100_000 { return 3 }
        if ns <= 250_000 { return 4 }
        if ns <= 500_000 { return 5 }
        if ns <= 1_000_000 { return 6 }
        if ns <= 2_500_000 { return 7 }
        if ns <= 5_000_000 { return 8 }
        if ns <= 10_000_000 { return 9 }
        if ns <= 25_000_000 { return 10 }
        if ns <= 50_000_000 { return 11 }
        if ns <= 100_000_000 { return 12 }
        return 13
    }

    /// A histogram's words: one count per bound, one for +Inf, the sum (nanoseconds), the count.
    public static func histogramWords(_ bounds: [Int64]) -> Int { bounds.count + 3 }

    /// `fluxgate_upstream_errors_total{reason}`, in this order.
    public enum UpstreamErrorReason: Int, CaseIterable, Sendable {
        case connect, tls, timeout, reset, `protocol`, truncated
        public var label: String {
            switch self {
            case .connect: return "connect"
            case .tls: return "tls"
            case .timeout: return "timeout"
            case .reset: return "reset"
            case .protocol: return "protocol"
            case .truncated: return "truncated"
            }
        }
    }

    /// `fluxgate_rejected_requests_total{reason}`, in this order.
    public enum RejectionReason: Int, CaseIterable, Sendable {
        case unauthorized, noRoute, badRequest, tooLarge, overCapacity, rateLimited, unknownModel
        public var label: String {
            switch self {
            case .unauthorized: return "unauthorized"
            case .noRoute: return "no_route"
            case .badRequest: return "bad_request"
            case .tooLarge: return "too_large"
            case .overCapacity: return "over_capacity"
            case .rateLimited: return "rate_limited"
            case .unknownModel: return "unknown_model"
            }
        }
    }

    /// `fluxgate_upstream_attempts_total{result}`, in this order (docs/observability.md).
    public enum AttemptResult: Int, CaseIterable, Sendable {
        case ok, connect, timeout, reset, status
        public var label: String {
            switch self {
            case .ok: return "ok"
            case .connect: return "connect"
            case .timeout: return "timeout"
            case .reset: return "reset"
            case .status: return "status"
            }
        }
    }

    /// `fluxgate_rate_limited_total{limit}`, in this order (docs/rate-limits.md).
    public enum RateLimit: Int, CaseIterable, Sendable {
        case requests, tokens, inFlight
        public var label: String {
            switch self {
            case .requests: return "requests"
            case .tokens: return "tokens"
            case .inFlight: return "in_flight"
            }
        }
    }

    /// `fluxgate_tokens_total{type}`, in this order (docs/usage.md).
    public enum TokenType: Int, CaseIterable, Sendable {
        case input, output, cacheRead, cacheWrite
        public var label: String {
            switch self {
            case .input: return "input"
            case .output: return "output"
            case .cacheRead: return "cache_read"
            case .cacheWrite: return "cache_write"
            }
        }
    }

    // MARK: Series keys

    /// An empty table entry.
    public static let emptyKey: Int64 = 0
    /// `upstream="none"` / `key="none"`.
    public static let noneKey: Int64 = 1
    /// `"other"`: what a full table counts under (docs/observability.md "Bounded series").
    public static let otherKey: Int64 = 2

    /// The series key of a configured name: FNV-1a (64 bits) of its UTF-8 bytes, kept clear of
    /// the three reserved values. Made once per configuration, never per request.
    public static func key(_ name: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let value = Int64(bitPattern: hash)
        return (0...2).contains(value) ? value &+ 3 : value
    }

    /// The `key` label of a client key (docs/observability.md): its `id`, `-` for a static key
    /// without one, `jwt:<kid>` for a JWT.
    public static func staticKeyLabel(id: String?) -> String { id ?? "-" }
    public static func jwtKeyLabel(kid: String) -> String { "jwt:\(kid)" }
}
