// The gateway's families of docs/observability.md: attempts and target health (failover),
// tokens (usage) and rate-limit refusals. Only series whose names the configuration in force
// has are shown, like every other family.
extension MetricsRenderer {
    static func attempts(_ out: inout MetricsText, _ host: HostMetrics) {
        family(&out, "fluxgate_upstream_attempts_total", "counter", "Tries sent to upstream targets, by how each ended.")
        var lines: [String] = []
        for (series, counts) in host.totals.attempts {
            guard let upstream = host.upstreamNames[series.first], let target = host.targetNames[series.tag] else { continue }
            let labels = "upstream=\"\(escape(upstream))\",target=\"\(escape(target))\""
            for result in MetricsSchema.AttemptResult.allCases {
                lines.append("fluxgate_upstream_attempts_total{\(labels),result=\"\(result.label)\"} \(counts[result.rawValue])\n")
            }
        }
        lines.sort()
        for line in lines { out += line }
    }

    static func targetsUp(_ out: inout MetricsText, _ host: HostMetrics) {
        family(&out, "fluxgate_upstream_target_up", "gauge", "1 while the target is in service, 0 while its health keeps it out.")
        for target in host.targetsUp {
            out +=
                "fluxgate_upstream_target_up{upstream=\"\(escape(target.upstream))\",target=\"\(escape(target.target))\"} \(target.up ? 1 : 0)\n"
        }
    }

    static func tokens(_ out: inout MetricsText, _ host: HostMetrics) {
        family(&out, "fluxgate_tokens_total", "counter", "Tokens the providers reported, by upstream, client key, model and type.")
        // Label sets, merged: a slot whose name was never published shows as `other`.
        var merged: [String: SIMD8<Int64>] = [:]
        for (series, counts) in host.totals.tokens {
            guard let upstream = host.upstreamNames[series.first], let key = host.keyNames[series.second] else { continue }
            let model = modelLabel(series.tag, upstream: series.first, host.modelNames)
            merged["upstream=\"\(escape(upstream))\",key=\"\(escape(key))\",model=\"\(escape(model))\"", default: SIMD8()] &+= counts
        }
        var lines: [String] = []
        for (labels, counts) in merged {
            for type in MetricsSchema.TokenType.allCases {
                lines.append("fluxgate_tokens_total{\(labels),type=\"\(type.label)\"} \(counts[type.rawValue])\n")
            }
        }
        lines.sort()
        for line in lines { out += line }
    }

    static func modelLabel(_ code: Int64, upstream: Int64, _ names: ModelNameTable?) -> String {
        if code == ModelNameTable.noneCode { return "none" }
        return names?.name(upstream: upstream, code: code) ?? "other"
    }

    static func rateLimited(_ out: inout MetricsText, _ host: HostMetrics) {
        family(&out, "fluxgate_rate_limited_total", "counter", "Requests refused with 429 by a rate limit, by client key and limit.")
        var lines: [String] = []
        for (series, counts) in host.totals.rateLimited {
            guard let key = host.keyNames[series.tag] else { continue }
            for limit in MetricsSchema.RateLimit.allCases {
                lines.append("fluxgate_rate_limited_total{key=\"\(escape(key))\",limit=\"\(limit.label)\"} \(counts[limit.rawValue])\n")
            }
        }
        lines.sort()
        for line in lines { out += line }
    }
}
