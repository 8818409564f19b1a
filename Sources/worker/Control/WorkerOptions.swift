/// The worker's command line, written only by the master (`WorkerTable.spawn`):
/// `--slot K --generation G [--inflight-cell C] [--metrics-cell C] [--rate-limits-fd F] [--listeners N] [--standby]`.
struct WorkerOptions {
    var slot = 0
    var generation: UInt64 = 0
    var inFlightCell: Int?
    /// The descriptor of the rate-limit segment (`RateLimitSegment`), when the master made one.
    var rateLimitsFD: CInt?
    /// The descriptor of the shared target health segment (`--target-health-fd N`).
    var targetHealthDescriptor: CInt?
    /// The region of the metrics segment this worker counts into (docs/observability.md).
    var metricsCell: Int?
    var listeners = 1
    var standby = false

    init(arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--slot": slot = iterator.next().flatMap { Int($0) } ?? slot
            case "--generation": generation = iterator.next().flatMap { UInt64($0) } ?? generation
            case "--inflight-cell": inFlightCell = iterator.next().flatMap { Int($0) }
            case "--rate-limits-fd": rateLimitsFD = iterator.next().flatMap { CInt($0) }
            case "--target-health-fd": targetHealthDescriptor = iterator.next().flatMap { CInt($0) }
            case "--metrics-cell": metricsCell = iterator.next().flatMap { Int($0) }
            case "--listeners": listeners = max(1, iterator.next().flatMap { Int($0) } ?? 1)
            case "--standby": standby = true
            default: break
            }
        }
    }
}
