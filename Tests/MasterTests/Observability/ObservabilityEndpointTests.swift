import Testing
@testable import Common
@testable import FluxgateMaster

// docs/observability.md "Endpoints": what the listener reads, and what /metrics prints.

@Suite struct ObservabilityRequestTests {
    func parse(_ text: String) -> ObservabilityRequest { ObservabilityRequest.parse(Array(text.utf8)) }

    @Test func getAndHeadAreServed() {
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == .get(path: "/metrics", head: false))
        #expect(parse("HEAD /readyz HTTP/1.0\r\n\r\n") == .get(path: "/readyz", head: true))
        #expect(parse("GET /metrics?name[]=x HTTP/1.1\r\n\r\n") == .get(path: "/metrics", head: false))
    }

    @Test func otherMethodsAreRefused() {
        #expect(parse("POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\n") == .methodNotAllowed)
        #expect(parse("DELETE / HTTP/1.1\r\n\r\n") == .methodNotAllowed)
    }

    @Test func anIncompleteHeadWaitsAndAnOversizedOneIsRefused() {
        #expect(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n") == .incomplete)
        let huge = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: ObservabilityRequest.maxHeadBytes) + "\r\n"
        #expect(parse(huge) == .malformed)
        #expect(parse("hello\r\n\r\n") == .malformed)
        #expect(parse("GET metrics HTTP/1.1\r\n\r\n") == .malformed)
    }

    @Test func headResponsesCarryTheLengthButNoBody() {
        let response = ObservabilityResponse.text(200, "OK", "ok")
        let head = String(decoding: response.wire(head: true), as: UTF8.self)
        #expect(head.hasSuffix("Content-Length: 3\r\nConnection: close\r\n\r\n"))
        #expect(String(decoding: response.wire(head: false), as: UTF8.self).hasSuffix("\r\n\r\nok\n"))
    }
}

@Suite struct MetricsRendererTests {
    func host() -> HostMetrics {
        var host = HostMetrics(version: "1.2.3")
        var configuration = Configuration()
        configuration.upstreams.entries = [
            .init(
                name: "openai", targetURL: TargetURL(scheme: .https, host: "api.openai.com", explicitPort: nil, basePath: "", query: nil),
                apiKey: Secret("k"), requestPath: "/openai")
        ]
        configuration.apiKeys.staticKeys = [.init(id: "team \"a\"", key: Secret("sk-1")), .init(id: nil, key: Secret("sk-2"))]
        host.name(configuration)
        return host
    }

    @Test func requestSeriesAreNamedByTheConfiguration() {
        var host = host()
        host.totals.requests[.init(upstream: MetricsSchema.key("openai"), key: MetricsSchema.key("team \"a\""), code: 200)] = 7
        host.totals.requests[.init(upstream: MetricsSchema.key("openai"), key: MetricsSchema.key("-"), code: 429)] = 2
        host.totals.requests[.init(upstream: MetricsSchema.noneKey, key: MetricsSchema.noneKey, code: 401)] = 1
        let text = MetricsRenderer.render(host)
        #expect(text.contains(#"fluxgate_requests_total{upstream="openai",key="team \"a\"",code="200"} 7"#))
        #expect(text.contains(#"fluxgate_requests_total{upstream="openai",key="-",code="429"} 2"#))
        #expect(text.contains(#"fluxgate_requests_total{upstream="none",key="none",code="401"} 1"#))
        #expect(text.contains(#"fluxgate_build_info{version="1.2.3"} 1"#))
    }

    @Test func seriesOfNamesNoLongerConfiguredDisappear() {
        var host = host()
        host.totals.requests[.init(upstream: MetricsSchema.key("removed"), key: MetricsSchema.noneKey, code: 200)] = 3
        host.totals.upstreams[MetricsSchema.key("removed")] = MetricsTotals.Upstream()
        let text = MetricsRenderer.render(host)
        #expect(!text.contains("removed"))
        #expect(!text.contains("fluxgate_requests_total{"))
    }

    @Test func histogramBucketsAreCumulativeAndEndAtTheCount() {
        var host = host()
        var upstream = MetricsTotals.Upstream()
        upstream.duration.buckets[0] = 2
        upstream.duration.buckets[3] = 1
        upstream.duration.buckets[MetricsSchema.durationBuckets.count] = 1
        upstream.duration.sumNs = 1_500_000_000
        host.totals.upstreams[MetricsSchema.key("openai")] = upstream
        let text = MetricsRenderer.render(host)
        #expect(text.contains(#"fluxgate_request_duration_seconds_bucket{upstream="openai",le="0.005"} 2"#))
        #expect(text.contains(#"fluxgate_request_duration_seconds_bucket{upstream="openai",le="0.05"} 3"#))
        #expect(text.contains(#"fluxgate_request_duration_seconds_bucket{upstream="openai",le="+Inf"} 4"#))
        #expect(text.contains(#"fluxgate_request_duration_seconds_count{upstream="openai"} 4"#))
        #expect(text.contains(#"fluxgate_request_duration_seconds_sum{upstream="openai"} 1.5"#))
    }

    @Test func everyFamilyHasHelpAndType() {
        let text = MetricsRenderer.render(host())
        let names = [
            "fluxgate_build_info", "fluxgate_requests_total", "fluxgate_request_duration_seconds",
            "fluxgate_upstream_response_seconds", "fluxgate_overhead_seconds", "fluxgate_request_body_bytes_total",
            "fluxgate_response_body_bytes_total", "fluxgate_in_flight_requests", "fluxgate_max_in_flight_requests",
            "fluxgate_open_connections", "fluxgate_upstream_errors_total", "fluxgate_rejected_requests_total",
            "fluxgate_workers", "fluxgate_worker_exits_total", "fluxgate_config_generation", "fluxgate_config_reloads_total",
            "fluxgate_config_last_reload_success_timestamp_seconds",
        ]
        for name in names {
            #expect(text.contains("# HELP \(name) ") && text.contains("# TYPE \(name) "), "\(name)")
        }
    }
}

@Suite struct MetricsRendererScaleTests {
    /// 10,000 request series (100 keys × 100 upstreams) all print, sorted; the time it took is
    /// printed for docs/performance.md (measured, never asserted).
    @Test func tenThousandSeriesAllPrint() {
        var host = HostMetrics(version: "test")
        var configuration = Configuration()
        let target = TargetURL(scheme: .https, host: "example.com", explicitPort: nil, basePath: "", query: nil)
        configuration.upstreams.entries = (0..<100).map {
            .init(name: "upstream-\($0)", targetURL: target, apiKey: Secret("k"), requestPath: "/u\($0)")
        }
        configuration.apiKeys.staticKeys = (0..<100).map { .init(id: "key-\($0)", key: Secret("sk-\($0)")) }
        host.name(configuration)
        for upstream in 0..<100 {
            let upstreamKey = MetricsSchema.key("upstream-\(upstream)")
            host.totals.upstreams[upstreamKey] = MetricsTotals.Upstream()
            for key in 0..<100 {
                host.totals.requests[.init(upstream: upstreamKey, key: MetricsSchema.key("key-\(key)"), code: 200)] = Int64(key)
            }
        }
        let clock = ContinuousClock()
        var text = ""
        let elapsed = clock.measure { text = MetricsRenderer.render(host) }
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("fluxgate_requests_total{") }
        #expect(lines.count == 10_000)
        #expect(lines == lines.sorted())
        print(
            "MetricsRendererScaleTests: 10,000 request series (+100 upstreams' histograms, \(text.utf8.count) bytes) rendered in \(elapsed)"
        )
    }
}
