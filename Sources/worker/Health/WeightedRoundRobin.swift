/// Smooth weighted round robin (nginx's `ngx_http_upstream_get_peer`): each choice adds every
/// eligible target's weight to its running score, picks the highest score and takes the sum of
/// the eligible weights off it. Weights 5, 1, 1 give a a b a c a a, never a burst of one target;
/// a target that is not eligible (out of service, already tried) is skipped without disturbing
/// the others' shares. One per upstream per worker; a pure value (tested in
/// `WeightedRoundRobinTests`).
struct WeightedRoundRobin: Equatable {
    private(set) var scores: [Int]

    init(count: Int) { scores = [Int](repeating: 0, count: count) }

    /// The next target among those `eligible` says yes to; nil when none is.
    mutating func next(weights: [Int], eligible: (Int) -> Bool) -> Int? {
        var best: Int?
        var total = 0
        for index in scores.indices where eligible(index) {
            scores[index] += weights[index]
            total += weights[index]
            if best.map({ scores[index] > scores[$0] }) ?? true { best = index }
        }
        if let best { scores[best] -= total }
        return best
    }

    /// `next(weights:eligible:)` with the eligible targets as a bit per index (at most 64
    /// targets, as `FailoverPlan` counts them): the same choice, with no closure called per target.
    mutating func next(weights: [Int], eligible mask: UInt64) -> Int? {
        scores.withUnsafeMutableBufferPointer { scores in
            weights.withUnsafeBufferPointer { weights in
                guard let scoreBase = scores.baseAddress, let weightBase = weights.baseAddress else { return nil }
                return Self.next(
                    scores: scoreBase, weights: weightBase, count: min(scores.count, weights.count), eligible: mask)
            }
        }
    }

    /// The same choice over scores and weights kept by their owner (`TargetGroup` keeps both in
    /// one block of its own: an array's retain and uniqueness check per choice cost ~60
    /// instructions, docs/performance.md "gateway3"). `count` targets, at most 64 looked at.
    static func next(scores: UnsafeMutablePointer<Int>, weights: UnsafePointer<Int>, count: Int, eligible mask: UInt64) -> Int? {
        guard mask != 0 else { return nil }
        var best = -1
        var bestScore = Int.min
        var total = 0
        for index in 0..<min(count, 64) where mask & (1 << UInt64(index)) != 0 {
            let weight = weights[index]
            scores[index] += weight
            total += weight
            if best < 0 || scores[index] > bestScore {
                best = index
                bestScore = scores[index]
            }
        }
        if best >= 0 { scores[best] -= total }
        return best < 0 ? nil : best
    }
}
