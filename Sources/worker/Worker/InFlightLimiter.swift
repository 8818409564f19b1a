import Synchronization

/// The whole-proxy limit on in-flight requests (`server.max_connections`, step 5 of docs/routing-and-forwarding.md "Order of checks"; docs/architecture.md "Whole-proxy `max_connections`"):
/// a request holds one permit from acceptance to the end of its response; when none is left the
/// request gets 503 at once, without queueing.
///
/// A protocol so the counter can move into memory shared by all worker processes (an atomic in an
/// mmap'd segment the master creates) without touching the data plane.
protocol InFlightLimiter: AnyObject, Sendable {
    /// Takes a permit; false when the limit is reached.
    func tryAcquire() -> Bool
    /// Returns a permit taken by `tryAcquire`.
    func release()
}

/// A process-local limiter: exact for one worker process, and the default until the shared
/// segment exists.
final class LocalInFlightLimiter: InFlightLimiter {
    private let limit: Int
    private let inFlight = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    var current: Int { inFlight.load(ordering: .relaxed) }

    func tryAcquire() -> Bool {
        var value = inFlight.load(ordering: .relaxed)
        while value < limit {
            let (exchanged, original) = inFlight.compareExchange(
                expected: value, desired: value + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            value = original
        }
        return false
    }

    func release() {
        let previous = inFlight.subtract(1, ordering: .acquiringAndReleasing).oldValue
        assert(previous > 0, "InFlightLimiter released more permits than it gave")
    }
}
