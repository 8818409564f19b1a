/// A set of upstream indices (positions in `Configuration.Upstreams.entries`): what a caller may
/// reach. A bitmap, so the router's membership test on the hot path is one load and one mask.
struct UpstreamSet: Sendable, Hashable {
    private var words: [UInt64]
    private let universe: Int

    /// Every upstream of a configuration with `count` upstreams.
    static func all(count: Int) -> UpstreamSet {
        var set = UpstreamSet(universe: count)
        for i in 0..<count { set.insert(i) }
        return set
    }

    init(universe: Int) {
        self.universe = universe
        self.words = [UInt64](repeating: 0, count: (universe + 63) / 64)
    }

    mutating func insert(_ index: Int) {
        precondition(index >= 0 && index < universe)
        words[index >> 6] |= 1 << UInt64(index & 63)
    }

    /// Inlined: asked once per model-routed request (a call cost as much as the test).
    @inline(__always)
    func contains(_ index: Int) -> Bool {
        guard index >= 0 && index < universe else { return false }
        return words[index >> 6] & (1 << UInt64(index & 63)) != 0
    }

    var isEmpty: Bool { words.allSatisfy { $0 == 0 } }
}
