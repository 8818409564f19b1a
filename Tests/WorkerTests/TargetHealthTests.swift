import Testing
@testable import FluxgateWorker

/// `TargetHealth` as a value with explicit instants (milliseconds of the monotonic clock), and
/// the word it is shared as (docs/routing-and-forwarding.md "Target health").
@Suite struct TargetHealthTests {
    static let policy = TargetHealth.Policy(failures: 3, cooldownMs: 1_000, trialMs: 500)

    static func failed(_ health: TargetHealth, times: Int, at ms: Int64) -> TargetHealth {
        (0..<times).reduce(health) { h, _ in h.failing(nowMs: ms, policy: policy) }
    }

    @Test func consecutiveFailuresTakeATargetOutForTheCooldown() {
        let two = Self.failed(TargetHealth(), times: 2, at: 10)
        #expect(two.availability(nowMs: 10) == .inService)
        let out = two.failing(nowMs: 20, policy: Self.policy)
        #expect(out.availability(nowMs: 20) == .out(until: 1_020))
        #expect(out.availability(nowMs: 1_019) == .out(until: 1_020))
        #expect(out.availability(nowMs: 1_020) == .trialDue)
    }

    @Test func aSuccessForgetsEarlierFailures() {
        let healed = Self.failed(TargetHealth(), times: 2, at: 10).succeeding(nowMs: 11, policy: Self.policy)
        #expect(Self.failed(healed, times: 2, at: 12).availability(nowMs: 12) == .inService)
    }

    @Test func oneTrialAfterTheCooldownThenBackInService() {
        let out = Self.failed(TargetHealth(), times: 3, at: 0)
        #expect(out.claimingTrial(nowMs: 999, policy: Self.policy) == nil)
        let trial = out.claimingTrial(nowMs: 1_000, policy: Self.policy)!
        // Everybody else keeps skipping it while the trial runs, and cannot claim a second one.
        #expect(trial.availability(nowMs: 1_100) == .out(until: 1_500))
        #expect(trial.claimingTrial(nowMs: 1_100, policy: Self.policy) == nil)
        let back = trial.succeeding(nowMs: 1_200, policy: Self.policy)
        #expect(back.availability(nowMs: 1_200) == .inService)
    }

    @Test func aFailedTrialDoublesTheCooldownUpTo300Seconds() {
        var health = Self.failed(TargetHealth(), times: 3, at: 0)
        var now: Int64 = 0
        var cooldowns: [Int64] = []
        for _ in 0..<12 {
            guard case .out(let until) = health.availability(nowMs: now) else { break }
            cooldowns.append(until - now)
            now = until
            health = health.claimingTrial(nowMs: now, policy: Self.policy)!.failing(nowMs: now, policy: Self.policy)
        }
        #expect(cooldowns.prefix(4) == [1_000, 2_000, 4_000, 8_000])
        #expect(cooldowns.last == 300_000)
    }

    @Test func aLateFailureOfARequestSentBeforeTheEjectionChangesNothing() {
        let out = Self.failed(TargetHealth(), times: 3, at: 0)
        #expect(out.failing(nowMs: 5, policy: Self.policy) == out)
    }

    @Test func theEjectionCountIsForgottenAfterServingFiveMinutes() {
        let out = Self.failed(TargetHealth(), times: 3, at: 0)
        let back = out.claimingTrial(nowMs: 1_000, policy: Self.policy)!.succeeding(nowMs: 1_000, policy: Self.policy)
        #expect(back.ejections == 1)
        #expect(back.succeeding(nowMs: 1_000 + 299_999, policy: Self.policy).ejections == 1)
        #expect(back.succeeding(nowMs: 1_000 + 300_000, policy: Self.policy).ejections == 0)
    }

    @Test func theSharedWordHoldsEveryField() {
        var health = TargetHealth()
        health.failures = 7
        health.ejections = 4
        health.out = true
        health.trial = true
        health.until = 123_456_789_012
        #expect(TargetHealth(word: health.word) == health)
        #expect(TargetHealth(word: 0) == TargetHealth())
    }
}

/// nginx's smooth weighted round robin, as a value.
@Suite struct WeightedRoundRobinTests {
    @Test func weightsFiveOneOneInterleave() {
        var rr = WeightedRoundRobin(count: 3)
        let picks = (0..<7).map { _ in rr.next(weights: [5, 1, 1]) { _ in true }! }
        #expect(picks == [0, 0, 1, 0, 2, 0, 0])
    }

    @Test func sharesFollowTheWeights() {
        var rr = WeightedRoundRobin(count: 2)
        var counts = [0, 0]
        for _ in 0..<400 { counts[rr.next(weights: [3, 1]) { _ in true }!] += 1 }
        #expect(counts == [300, 100])
    }

    @Test func aTargetNotEligibleIsSkippedAndNoneLeftIsNil() {
        var rr = WeightedRoundRobin(count: 3)
        let picks = (0..<4).map { _ in rr.next(weights: [1, 1, 1]) { $0 != 1 }! }
        #expect(!picks.contains(1))
        #expect(Set(picks) == [0, 2])
        #expect(rr.next(weights: [1, 1, 1]) { _ in false } == nil)
    }

    /// The eligible targets as bits (what `TargetGroup.choose` hands it) choose as the closure does.
    @Test func eligibleBitsChooseAsTheClosureDoes() {
        let weights = [5, 1, 3, 2]
        var byClosure = WeightedRoundRobin(count: 4)
        var byBits = WeightedRoundRobin(count: 4)
        for step in 0..<200 {
            let mask = UInt64(step * 7 % 16)
            let expected = byClosure.next(weights: weights) { mask & (1 << UInt64($0)) != 0 }
            #expect(byBits.next(weights: weights, eligible: mask) == expected, "step \(step)")
            #expect(byBits == byClosure)
        }
    }
}

/// `TargetHealthBoard.isUntouched`'s shortcut: a word with bits 0–14 clear is one a success
/// leaves as it is.
@Suite struct TargetHealthWordTests {
    @Test func aSuccessChangesNothingOnAnUntouchedWord() {
        let policy = TargetHealth.Policy(failures: 3, cooldownMs: 1_000, trialMs: 500)
        for until: Int64 in [0, 1, 299_999, 300_000, 10_000_000] {
            for low: UInt64 in [0, 1, 0x100, 0x2000, 0x4000, 0x2101] {
                let word = UInt64(until) << 15 | low
                let health = TargetHealth(word: word)
                let same = health.succeeding(nowMs: 400_000, policy: policy) == health
                if word & 0x7FFF == 0 { #expect(same, "word \(word)") }
            }
        }
    }
}
