#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Common

// bench/metrics-render.sh: fills two workers' regions of a real metrics segment with `series`
// `fluxgate_requests_total` series (10 upstreams × keys × 10 codes), every upstream's histograms,
// attempts and target, and tokens for a quarter of the keys and times what a scrape does in
// the master: fold the live regions into the retained totals, name them, render the text,
// copy it into the response body. Prints the median and the slowest of the runs, in ms.
let arguments = CommandLine.arguments.dropFirst()
let series = arguments.first.flatMap { Int($0) } ?? 10_000
let runs = arguments.dropFirst().first.flatMap { Int($0) } ?? 50
let upstreams = 10
let codes: [Int64] = [200, 201, 400, 401, 403, 404, 429, 500, 502, 503]
let keys = max(1, series / (upstreams * codes.count))

let segment = try MetricsSegment.create()
var host = HostMetrics(version: "bench")
host.upstreamNames = [MetricsSchema.noneKey: "none", MetricsSchema.otherKey: "other"]
host.keyNames = host.upstreamNames
host.targetNames = [MetricsSchema.otherKey: "other"]
host.modelNames = segment.modelNames
for u in 0..<upstreams {
    let upstream = "upstream-\(u)"
    let upstreamKey = MetricsSchema.key(upstream)
    host.upstreamNames[upstreamKey] = upstream
    let target = "https://target-\(u).example.com"
    host.targetNames[MetricsSchema.key(target)] = target
    host.targetsUp.append((upstream, target, true))
    for worker in 0..<2 {
        let region = segment.region(worker)
        let entry = region.upstreamEntry(upstreamKey)
        region.countUpstream(entry: entry, requestBody: 100, responseBody: 1000, durationNs: 40_000_000, upstreamResponseNs: 30_000_000)
        region.countAttempt(upstream: upstreamKey, target: MetricsSchema.key(target), .ok)
    }
    for k in 0..<keys {
        let key = "key-\(k)"
        let keyKey = MetricsSchema.key(key)
        host.keyNames[keyKey] = key
        for (index, code) in codes.enumerated() {
            segment.region((k + index) % 2).countRequest(upstream: upstreamKey, key: keyKey, code: code)
        }
        // Tokens for a quarter of the keys, one model each (4 lines per series).
        guard k % 4 == 0 else { continue }
        let region = segment.region(k % 2)
        let model = region.modelNames.code(upstream: upstreamKey, name: "model-\(k % 5)")
        region.countTokens(upstream: upstreamKey, key: keyKey, model: model, input: 10, output: 5, cacheRead: 1, cacheWrite: 0)
    }
}

/// This thread's CPU time (ns): on a machine shared with other work, wall time also counts the
/// time the scheduler gave others.
func cpuNs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

var wall: [Double] = []
var cpu: [Double] = []
var fold: [Double] = []
var bytes = 0
var lines = 0
for _ in 0..<runs {
    let start = fluxgate_monotonic_ns()
    let startCPU = cpuNs()
    var scrape = host
    for worker in 0..<2 { segment.region(worker).add(to: &scrape.totals) }
    let folded = cpuNs()
    let body = MetricsRenderer.renderBytes(scrape)
    wall.append(Double(fluxgate_monotonic_ns() - start) / 1e6)
    cpu.append(Double(cpuNs() - startCPU) / 1e6)
    fold.append(Double(folded - startCPU) / 1e6)
    bytes = body.count
    lines = body.reduce(0) { $1 == 0x0A ? $0 + 1 : $0 }
}
func ms(_ value: Double) -> Double { (value * 100).rounded() / 100 }
func median(_ values: [Double]) -> Double { ms(values.sorted()[values.count / 2]) }
let requestSeries = upstreams * keys * codes.count
print("\(requestSeries) requests_total series, \(lines) lines, \(bytes) bytes; \(runs) runs")
print("wall median \(median(wall)) ms, slowest \(ms(wall.max()!)) ms")
print("CPU median \(median(cpu)) ms (fold \(median(fold)) ms, render \(median(zip(cpu, fold).map { $0 - $1 })) ms)")
