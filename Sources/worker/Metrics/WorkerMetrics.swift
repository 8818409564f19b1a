import Common
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The worker's side of docs/observability.md: every finished request is counted into the
/// worker's own region of the shared segment, from values already in its `RequestFacts`
/// (no string, no dictionary, no allocation per request). Touched only from the worker's loop.
struct WorkerMetrics {
    let region: MetricsRegion
    /// The model codes this worker used last (a code never changes while the master lives).
    let models = ModelCodeCache()
    /// The tokens series counted last.
    let tokenSeries = LastTokenSeries()

    /// One finished request (`WorkerContext.requestEnded`). `now`: its end.
    func record(_ facts: borrowing RequestFacts, now: UInt64) {
        region.countServed()
        let upstream = facts.route?.metricKey ?? MetricsSchema.noneKey
        region.countRequest(upstream: upstream, key: facts.keyMetric, code: Int64(facts.status))
        let entry = region.upstreamEntry(upstream)
        let started = facts.startedAt.uptimeNanoseconds
        let sent = facts.upstreamSentNs
        let upstreamHead = facts.upstreamHeadNs
        region.countUpstream(
            entry: entry, requestBody: Int64(facts.requestBodyBytes ?? 0), responseBody: Int64(facts.responseBodyBytes ?? 0),
            durationNs: Self.span(started, now),
            upstreamResponseNs: sent != 0 && upstreamHead >= sent ? Self.span(sent, upstreamHead) : nil)
        // Only a request answered at its first attempt: a retry's wait would count as overhead.
        if facts.attempts == 1, sent != 0, upstreamHead != 0, facts.clientHeadNs >= upstreamHead {
            region.observeOverhead(nanoseconds: Self.span(started, sent) + Self.span(upstreamHead, facts.clientHeadNs))
        }
        if let limit = facts.rateLimited { region.countRateLimited(key: facts.keyMetric, Self.limit(limit)) }
        if let usage = facts.usage { countTokens(usage, facts, upstream: upstream) }
        if facts.outcome == .upstreamCut {
            region.countUpstreamError(entry: entry, .truncated)
        } else if let cause = facts.upstreamError {
            region.countUpstreamError(entry: entry, Self.reason(cause.layer))
        } else if facts.outcome == .proxyError,
            let reason = facts.unknownModel ? MetricsSchema.RejectionReason.unknownModel : Self.rejection(status: facts.status)
        {
            region.countRejected(reason)
        }
    }

    /// `fluxgate_tokens_total` (docs/observability.md "Model names"): the response's model, else
    /// the request's, as a code of the host's bounded model-name table.
    func countTokens(_ usage: UsageResult, _ facts: borrowing RequestFacts, upstream: Int64) {
        let input = Int64(usage.inputTokens ?? 0)
        let output = Int64(usage.outputTokens ?? 0)
        let cacheRead = Int64(usage.cacheReadTokens ?? 0)
        let cacheWrite = Int64(usage.cacheWriteTokens ?? 0)
        guard input | output | cacheRead | cacheWrite != 0 else { return }
        // Not `usage.model ?? facts.requestModel`: that copied the whole result first.
        var model = ModelNameTable.noneCode
        if usage.hasModel {
            model = models.code(upstream: upstream, name: usage.modelName, in: region.modelNames)
        } else if let name = facts.requestModel {
            model = models.code(upstream: upstream, name: name, in: region.modelNames)
        }
        let key = facts.keyMetric
        if tokenSeries.counts == nil || tokenSeries.upstream != upstream || tokenSeries.key != key || tokenSeries.model != model {
            tokenSeries.counts = region.tokenCounts(upstream: upstream, key: key, model: model)
            tokenSeries.upstream = upstream
            tokenSeries.key = key
            tokenSeries.model = model
        }
        MetricsRegion.addTokens(tokenSeries.counts!, input: input, output: output, cacheRead: cacheRead, cacheWrite: cacheWrite)
    }

    static func limit(_ kind: RateLimitKind) -> MetricsSchema.RateLimit {
        switch kind {
        case .requests: return .requests
        case .tokens: return .tokens
        case .inFlight: return .inFlight
        }
    }

    @inline(__always) static func span(_ from: UInt64, _ to: UInt64) -> Int64 {
        to >= from ? Int64(to - from) : 0
    }

    static func reason(_ layer: UpstreamErrorCause.Layer) -> MetricsSchema.UpstreamErrorReason {
        switch layer {
        case .dns, .connect: return .connect
        case .tls: return .tls
        case .timeout: return .timeout
        case .reset: return .reset
        case .protocol: return .protocol
        // A response cut after its head (docs/routing-and-forwarding.md "Truncated responses").
        case .truncated: return .truncated
        }
    }

    /// A response the proxy made itself without asking an upstream, by its status
    /// (docs/observability.md `fluxgate_rejected_requests_total`).
    static func rejection(status: UInt) -> MetricsSchema.RejectionReason? {
        switch status {
        case 401: return .unauthorized
        case 404: return .noRoute
        case 413, 414, 431: return .tooLarge
        case 429: return .rateLimited
        case 503: return .overCapacity
        case 400..<500, 501, 505: return .badRequest
        default: return nil
        }
    }
}

/// The address of the `fluxgate_tokens_total` series counted last (`MetricsRegion.tokenCounts`:
/// it stays put while the worker lives), and its labels: the next request of the same key and
/// model counts without a probe of the region's table (~50 instructions). Touched only from the
/// worker's loop.
final class LastTokenSeries {
    var upstream: Int64 = 0
    var key: Int64 = 0
    var model: Int64 = 0
    var counts: UnsafeMutablePointer<Int64>?
}

/// The last few (upstream, model name) → code lookups of one worker: the shared table's lookup
/// hashes the name and compares its bytes (~500 instructions per request, docs/performance.md);
/// a hit here is a comparison of the name's bytes. Codes are never reassigned while the master
/// lives, so an entry cannot go stale. Touched only from the worker's loop.
final class ModelCodeCache {
    static let size = 8
    private var entries: [(upstream: Int64, name: String, code: Int64)] = []
    private var next = 0
    /// The entry found last, apart: most requests name the model of the one before them, and
    /// the loop over the array of tuples cost more than the comparison.
    private var lastUpstream = Int64.min  // no upstream's key: nothing found yet
    private var lastName = ""
    private var lastCode = ModelNameTable.noneCode

    func code(upstream: Int64, name: String, in table: ModelNameTable) -> Int64 {
        // `==` before `same`: the usage readers' names are the worker's own (`UsageModelNames`),
        // so the name is most often the very `String` kept here, which `==` tells by its bits.
        if upstream == lastUpstream && lastName == name { return lastCode }
        let code = lookUp(upstream: upstream, name: name, in: table)
        lastUpstream = upstream
        lastName = name
        lastCode = code
        return code
    }

    @inline(never)
    private func lookUp(upstream: Int64, name: String, in table: ModelNameTable) -> Int64 {
        for entry in entries where entry.upstream == upstream && Self.same(entry.name, name) { return entry.code }
        let code = table.code(upstream: upstream, name: name)
        if entries.count < Self.size {
            entries.append((upstream, name, code))
        } else {
            entries[next] = (upstream, name, code)
            next = (next + 1) % Self.size
        }
        return code
    }

    /// The same UTF-8 bytes, as the table compares names (`String ==` took ~110 instructions
    /// for two equal 22-byte names in two objects: the reader of each connection makes its own).
    @inline(__always) static func same(_ a: String, _ b: String) -> Bool {
        let equal = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
            }
        }
        return equal.flatMap { $0 } ?? (a == b)
    }
}
