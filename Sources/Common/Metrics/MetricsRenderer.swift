/// Everything `/metrics` shows, gathered by the master at scrape time (docs/observability.md
/// "Metrics"): the counters summed over every region and the retained totals, the names of the
/// current configuration, and the supervisor's own numbers.
public struct HostMetrics {
    public var version: String
    public var totals = MetricsTotals()
    /// Series key → name, for the upstreams and keys of the current configuration: a series of a
    /// name a reload removed is not shown (docs/observability.md "Series of removed names").
    public var upstreamNames: [Int64: String] = [:]
    public var keyNames: [Int64: String] = [:]
    /// Series key → origin, for the targets of the current configuration.
    public var targetNames: [Int64: String] = [:]
    /// Every configured target and whether it is in service (`fluxgate_upstream_target_up`).
    public var targetsUp: [(upstream: String, target: String, up: Bool)] = []
    /// The host's model names, for `fluxgate_tokens_total`'s `model` (nil: no segment).
    public var modelNames: ModelNameTable?
    public var inFlight = 0
    public var maxInFlight = 0
    /// starting, serving, draining.
    public var workers = [0, 0, 0]
    /// crash, heartbeat, replaced.
    public var workerExits = [Int64](repeating: 0, count: 3)
    public var generation: UInt64 = 0
    /// applied, rejected, failed.
    public var reloads = [Int64](repeating: 0, count: 3)
    public var lastReloadSuccess: Double = 0

    public init(version: String) { self.version = version }

    /// The names of `configuration`'s upstreams and keys, by series key.
    public mutating func name(_ configuration: Configuration) {
        upstreamNames = [MetricsSchema.noneKey: "none", MetricsSchema.otherKey: "other"]
        keyNames = upstreamNames
        targetNames = [MetricsSchema.otherKey: "other"]
        for upstream in configuration.upstreams.entries {
            upstreamNames[MetricsSchema.key(upstream.name)] = upstream.name
            for target in upstream.targets { targetNames[MetricsSchema.key(target.targetURL.origin)] = target.targetURL.origin }
        }
        for key in configuration.apiKeys.staticKeys {
            let label = MetricsSchema.staticKeyLabel(id: key.id)
            keyNames[MetricsSchema.key(label)] = label
        }
        for key in configuration.apiKeys.jwt {
            let label = MetricsSchema.jwtKeyLabel(kid: key.id)
            keyNames[MetricsSchema.key(label)] = label
        }
    }
}

/// Prometheus text format 0.0.4, written by hand: swift-prometheus keeps its metrics in the
/// process that counts them and cannot sum another process's shared memory.
public enum MetricsRenderer {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ host: HostMetrics) -> String { String(decoding: renderBytes(host), as: UTF8.self) }

    /// The answer's body.
    public static func renderBytes(_ host: HostMetrics) -> [UInt8] {
        var out = MetricsText(
            capacity: 4096 + host.totals.requests.count * 80 + host.totals.upstreams.count * 4096 + host.totals.tokens.count * 400)
        family(&out, "fluxgate_build_info", "gauge", "Always 1; the version label is the running build.")
        out += "fluxgate_build_info{version=\"\(escape(host.version))\"} 1\n"
        requests(&out, host)
        upstreams(&out, host)
        histogram(
            &out, "fluxgate_overhead_seconds",
            "Time the proxy itself adds: head received to upstream request written, plus upstream head to client head written.", "",
            MetricsSchema.overheadBuckets, host.totals.overhead)
        attempts(&out, host)
        targetsUp(&out, host)
        tokens(&out, host)
        rateLimited(&out, host)
        gauge(&out, "fluxgate_in_flight_requests", "Requests being served now, every worker.", host.inFlight)
        gauge(&out, "fluxgate_max_in_flight_requests", "The in-flight limit (server.max_connections).", host.maxInFlight)
        gauge(&out, "fluxgate_open_connections", "Open client connections, every worker.", Int(host.totals.openConnections))
        family(
            &out, "fluxgate_rejected_requests_total", "counter", "Requests the proxy answered itself without asking an upstream, by reason."
        )
        for reason in MetricsSchema.RejectionReason.allCases {
            out += "fluxgate_rejected_requests_total{reason=\"\(reason.label)\"} \(host.totals.rejected[reason.rawValue])\n"
        }
        family(
            &out, "fluxgate_ratelimit_backend_errors_total", "counter",
            "Rate-limit checks that found Redis unavailable (on_unavailable applied).")
        out += "fluxgate_ratelimit_backend_errors_total \(host.totals.rateLimitBackendErrors)\n"
        family(&out, "fluxgate_workers", "gauge", "Worker processes by state.")
        for (index, state) in ["starting", "serving", "draining"].enumerated() {
            out += "fluxgate_workers{state=\"\(state)\"} \(host.workers[index])\n"
        }
        family(&out, "fluxgate_worker_exits_total", "counter", "Worker processes that exited, by reason.")
        for (index, reason) in ["crash", "heartbeat", "replaced"].enumerated() {
            out += "fluxgate_worker_exits_total{reason=\"\(reason)\"} \(host.workerExits[index])\n"
        }
        gauge(&out, "fluxgate_config_generation", "The configuration generation in force.", Int(host.generation))
        family(&out, "fluxgate_config_reloads_total", "counter", "Reloads by result.")
        for (index, result) in ["applied", "rejected", "failed"].enumerated() {
            out += "fluxgate_config_reloads_total{result=\"\(result)\"} \(host.reloads[index])\n"
        }
        family(&out, "fluxgate_config_last_reload_success_timestamp_seconds", "gauge", "Unix time of the last successful (re)load.")
        out += "fluxgate_config_last_reload_success_timestamp_seconds \(host.lastReloadSuccess)\n"
        return out.bytes
    }

    /// The bulk of a large scrape: sorted by name ranks (integers), written as bytes.
    private static func requests(_ out: inout MetricsText, _ host: HostMetrics) {
        family(&out, "fluxgate_requests_total", "counter", "Requests finished, by upstream, client key and status sent to the client.")
        let upstreams = SortedNames(host.upstreamNames)
        let keys = SortedNames(host.keyNames)
        var rows: [(upstream: Int32, key: Int32, code: Int64, count: Int64)] = []
        rows.reserveCapacity(host.totals.requests.count)
        for (series, count) in host.totals.requests {
            guard let upstream = upstreams.rank[series.upstream], let key = keys.rank[series.key] else { continue }
            rows.append((upstream, key, series.code, count))
        }
        rows.sort { ($0.upstream, $0.key, $0.code) < ($1.upstream, $1.key, $1.code) }
        for row in rows {
            out.append("fluxgate_requests_total{upstream=\"")
            out.append(upstreams.escaped[Int(row.upstream)])
            out.append("\",key=\"")
            out.append(keys.escaped[Int(row.key)])
            out.append("\",code=\"")
            if row.code == MetricsRegion.otherCode { out.append("other") } else { out.append(row.code) }
            out.append("\"} ")
            out.append(row.count)
            out.append("\n")
        }
    }

    private static func upstreams(_ out: inout MetricsText, _ host: HostMetrics) {
        let named = host.totals.upstreams.compactMap { key, value in host.upstreamNames[key].map { (escape($0), value) } }
            .sorted { $0.0 < $1.0 }
        let durationHelp = "Request head received to response end."
        family(&out, "fluxgate_request_duration_seconds", "histogram", durationHelp)
        for (name, value) in named {
            samples(&out, "fluxgate_request_duration_seconds", "upstream=\"\(name)\"", MetricsSchema.durationBuckets, value.duration)
        }
        family(&out, "fluxgate_upstream_response_seconds", "histogram", "Upstream request sent to upstream response head.")
        for (name, value) in named {
            samples(
                &out, "fluxgate_upstream_response_seconds", "upstream=\"\(name)\"", MetricsSchema.durationBuckets, value.upstreamResponse)
        }
        family(&out, "fluxgate_request_body_bytes_total", "counter", "Request body bytes received from clients.")
        for (name, value) in named { out += "fluxgate_request_body_bytes_total{upstream=\"\(name)\"} \(value.requestBodyBytes)\n" }
        family(&out, "fluxgate_response_body_bytes_total", "counter", "Response body bytes sent to clients.")
        for (name, value) in named { out += "fluxgate_response_body_bytes_total{upstream=\"\(name)\"} \(value.responseBodyBytes)\n" }
        family(&out, "fluxgate_upstream_errors_total", "counter", "Upstream exchanges that failed, by reason.")
        for (name, value) in named where name != "none" {
            for reason in MetricsSchema.UpstreamErrorReason.allCases {
                out += "fluxgate_upstream_errors_total{upstream=\"\(name)\",reason=\"\(reason.label)\"} \(value.errors[reason.rawValue])\n"
            }
        }
    }

    static func family(_ out: inout MetricsText, _ name: String, _ type: String, _ help: String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    static func gauge(_ out: inout MetricsText, _ name: String, _ help: String, _ value: Int) {
        family(&out, name, "gauge", help)
        out += "\(name) \(value)\n"
    }

    private static func histogram(
        _ out: inout MetricsText, _ name: String, _ help: String, _ labels: String, _ bounds: [Double], _ value: MetricsTotals.Histogram
    ) {
        family(&out, name, "histogram", help)
        samples(&out, name, labels, bounds, value)
    }

    /// `_bucket` lines (cumulative), `_sum` in seconds, `_count`.
    private static func samples(
        _ out: inout MetricsText, _ name: String, _ labels: String, _ bounds: [Double], _ value: MetricsTotals.Histogram
    ) {
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative: Int64 = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += value.buckets[index]
            out += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n"
        }
        cumulative += value.buckets[bounds.count]
        out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n"
        let braces = labels.isEmpty ? "" : "{\(labels)}"
        out += "\(name)_sum\(braces) \(Double(value.sumNs) / 1e9)\n"
        // The +Inf bucket, not the count word: a scrape during a worker's update stays consistent.
        out += "\(name)_count\(braces) \(cumulative)\n"
    }

    /// A label value: backslash, double quote and line feed escaped (the text format's rules).
    public static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) else { return value }
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}

/// Names by series key, ranked in their sorted order and escaped once per scrape.
struct SortedNames {
    var rank: [Int64: Int32] = [:]
    var escaped: [[UInt8]] = []

    init(_ names: [Int64: String]) {
        let sorted = names.map { (key: $0.key, name: MetricsRenderer.escape($0.value)) }.sorted { $0.name < $1.name }
        rank.reserveCapacity(sorted.count)
        escaped.reserveCapacity(sorted.count)
        for (index, entry) in sorted.enumerated() {
            rank[entry.key] = Int32(index)
            escaped.append(Array(entry.name.utf8))
        }
    }
}
