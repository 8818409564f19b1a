import Common

/// The passive health of one target, as a value that fits one 64-bit word of the shared health
/// segment (docs/routing-and-forwarding.md "Target health"): every transition is a pure function
/// of the word, the instant and the policy, and the shell applies it with one compare-and-swap, so
/// that all workers of the host see one state. Tested with explicit instants in `TargetHealthTests`.
///
/// States: in service; out of service until `until`; in a half-open trial until `until` (one
/// request was let through after the cooldown; the others keep skipping the target).
///
/// Layout of the word: bits 0–7 consecutive failures (saturating), 8–12 ejections (saturating),
/// bit 13 out of service, bit 14 a trial was handed out, bits 15–63 `until` in milliseconds of
/// the monotonic clock (shared by every process of the host): the end of the cooldown or of the
/// trial while out, the instant the target came back while in service.
struct TargetHealth: Equatable {
    var failures: Int = 0
    var ejections: Int = 0
    var out = false
    var trial = false
    /// Milliseconds of the monotonic clock.
    var until: Int64 = 0

    struct Policy: Equatable {
        /// Consecutive failed tries that take a target out.
        var failures: Int
        var cooldownMs: Int64
        var maxCooldownMs: Int64 = 300_000
        /// How long a half-open trial may take before another one is handed out.
        var trialMs: Int64
    }

    /// What a choice may do with the target now.
    enum Availability: Equatable {
        case inService
        /// The cooldown is over: one trial request may be sent (after `claimTrial`).
        case trialDue
        /// Out until this instant (ms).
        case out(until: Int64)
    }

    init() {}

    init(word: UInt64) {
        failures = Int(word & 0xFF)
        ejections = Int((word >> 8) & 0x1F)
        out = word & TargetHealthSegment.outOfServiceBit != 0
        trial = word & (1 << 14) != 0
        until = Int64(word >> 15)
    }

    var word: UInt64 {
        UInt64(min(failures, 0xFF)) | UInt64(min(ejections, 0x1F)) << 8 | (out ? TargetHealthSegment.outOfServiceBit : 0)
            | (trial ? 1 << 14 : 0)
            | UInt64(max(until, 0)) << 15
    }

    func availability(nowMs: Int64) -> Availability {
        guard out else { return .inService }
        return until <= nowMs ? .trialDue : .out(until: until)
    }

    /// The one request of a half-open trial is handed out: the others skip the target until the
    /// trial's outcome (or `trialMs`). nil when the trial is not due (another worker took it).
    func claimingTrial(nowMs: Int64, policy: Policy) -> TargetHealth? {
        guard availability(nowMs: nowMs) == .trialDue else { return nil }
        var next = self
        next.trial = true
        next.until = nowMs + policy.trialMs
        return next
    }

    /// A try on the target succeeded: back in service (a trial's success), failures forgotten;
    /// the ejection count, which doubles the next cooldown, is forgotten once the target has
    /// served for `maxCooldownMs`.
    func succeeding(nowMs: Int64, policy: Policy) -> TargetHealth {
        var next = self
        if out {
            next.out = false
            next.trial = false
            next.until = nowMs
        }
        next.failures = 0
        if !next.out, next.ejections > 0, nowMs - next.until >= policy.maxCooldownMs { next.ejections = 0 }
        return next
    }

    /// A try on the target failed (by the upstream's `retry.on`).
    func failing(nowMs: Int64, policy: Policy) -> TargetHealth {
        var next = self
        if out {
            // A trial's failure ejects again with a doubled cooldown; a failure of a request that
            // was sent before the ejection changes nothing.
            guard trial else { return self }
            next.eject(nowMs: nowMs, policy: policy)
            return next
        }
        next.failures = min(failures + 1, 0xFF)
        if next.failures >= policy.failures { next.eject(nowMs: nowMs, policy: policy) }
        return next
    }

    private mutating func eject(nowMs: Int64, policy: Policy) {
        ejections = min(ejections + 1, 0x1F)
        out = true
        trial = false
        failures = 0
        until = nowMs + Self.cooldown(ejections: ejections, policy: policy)
    }

    /// `cooldown_ms` for the first ejection, doubled for each one after, at most `maxCooldownMs`.
    static func cooldown(ejections: Int, policy: Policy) -> Int64 {
        var ms = policy.cooldownMs
        for _ in 1..<max(ejections, 1) {
            ms *= 2
            if ms >= policy.maxCooldownMs { break }
        }
        return min(ms, policy.maxCooldownMs)
    }
}
