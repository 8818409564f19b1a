import CLinux
import Common
import NIOCore

/// The targets of one upstream in one configuration snapshot, and the choice among them
/// (docs/routing-and-forwarding.md "Several targets"): smooth weighted round robin over the
/// targets in service, per worker; health read from the host's shared `TargetHealthBoard`.
///
/// Built with the snapshot; its round-robin scores and the health cells it resolved are touched
/// only on the worker's one event loop (hence `@unchecked Sendable`, like the snapshot holding it).
final class TargetGroup: @unchecked Sendable {
    let upstreamName: String
    let targets: [UpstreamTarget]
    let weights: [Int]
    let policy: TargetHealth.Policy
    /// Each target's health cell, resolved on first use (a target's cell is named by the upstream
    /// and the target's origin, so a reload keeps the health of the targets that stay).
    private var cells: [Int?]?
    /// One block of the group's own, `targets.count` each: the smooth round robin's scores
    /// (`WeightedRoundRobin.next(scores:weights:count:eligible:)`), the weights, and `cells` as
    /// plain values (-1: no cell; valid once `cells` is resolved). Arrays were retained,
    /// checked for uniqueness and bounds per choice (~100 instructions for two targets,
    /// docs/performance.md "gateway3").
    private let block: UnsafeMutablePointer<Int>
    private let count: Int
    private var scores: UnsafeMutablePointer<Int> { block }
    private var weightWords: UnsafeMutablePointer<Int> { block + count }
    private var cellWords: UnsafeMutablePointer<Int> { block + 2 * count }
    /// `cells` and `cellWords` hold the resolved cells.
    private var resolved = false
    /// Each target's health word in the segment of `wordsBoard` (nil: no cell), resolved with
    /// `cells`: the usual choice and success read each with one load, without the optional
    /// segment and the cell's arithmetic per target (docs/performance.md "gateway7").
    private let words: UnsafeMutablePointer<UnsafeMutablePointer<Int64>?>
    /// The board `words` point into, kept so that they stay valid; its identity is compared per
    /// call (another board, as a test may pass, takes the path by cells).
    private var wordsBoard: TargetHealthBoard?
    private var wordsBoardID: ObjectIdentifier?

    init(_ upstream: Configuration.Upstream, attemptTimeoutMs: UInt64) {
        upstreamName = upstream.name
        targets = upstream.targets.map { UpstreamTarget($0, upstreamName: upstream.name) }
        weights = upstream.targets.map(\.weight)
        let count = upstream.targets.count
        self.count = count
        let block = UnsafeMutablePointer<Int>.allocate(capacity: max(3 * count, 1))
        block.initialize(repeating: 0, count: max(3 * count, 1))
        for (index, target) in upstream.targets.enumerated() { block[count + index] = target.weight }
        self.block = block
        words = .allocate(capacity: max(count, 1))
        words.initialize(repeating: nil, count: max(count, 1))
        policy = TargetHealth.Policy(
            failures: upstream.health.failures, cooldownMs: Int64(clamping: upstream.health.cooldownMs),
            trialMs: Int64(clamping: min(attemptTimeoutMs, Configuration.Health.maxCooldownMs)))
    }

    deinit {
        block.deallocate()
        words.deallocate()
    }

    func cells(on board: TargetHealthBoard) -> [Int?] {
        if let cells { return cells }
        let resolved = targets.map { board.cell(upstream: upstreamName, origin: $0.origin) }
        for (index, cell) in resolved.enumerated() {
            cellWords[index] = cell ?? -1
            words[index] = board.word(cell: cell)
        }
        wordsBoard = board
        wordsBoardID = ObjectIdentifier(board)
        cells = resolved
        self.resolved = true
        return resolved
    }

    /// The cell of the target at `index` (read in place: no copy of the array per request).
    private func cell(_ index: Int, on board: TargetHealthBoard) -> Int? {
        if !resolved { _ = cells(on: board) }
        let cell = cellWords[index]
        return cell < 0 ? nil : cell
    }

    /// The next target not in `tried` (a bit per index) that is in service, or whose half-open
    /// trial this request takes; nil when there is none. Each target's health word is read once,
    /// and the round robin is given the eligible ones as bits (a closure per target read the
    /// health again: docs/performance.md, "gwpath (session 12)").
    /// Inlined: the shortcut below is the usual choice; the rest is `chooseByCells`.
    @inline(__always)
    func choose(excluding tried: UInt64, board: TargetHealthBoard, nowMs: Int64) -> Int? {
        if tried == 0, let chosen = firstInService(boardID: ObjectIdentifier(board)) { return chosen }
        return chooseByCells(excluding: tried, board: board, nowMs: nowMs)
    }

    /// `choose(excluding: 0, …)`'s shortcut alone, needing no clock: the first try with every
    /// target in service, the round robin over all of them, each health word read by one load
    /// (the same choice as `chooseByCells`, where each is in service). nil when it does not apply
    /// (a target out of service, another board than the words', more than 64 targets), with
    /// nothing changed: `choose` then goes by cells. The exchange's first choice reads the clock
    /// only then (docs/performance.md "session 16, gateway").
    @inline(__always)
    func firstInService(boardID: ObjectIdentifier) -> Int? {
        guard count <= 64, boardID == wordsBoardID else { return nil }
        if count == 2 { return chooseOfTwo() }
        for index in 0..<count {
            if let word = words[index], UInt64(bitPattern: fluxgate_atomic_load(word)) & TargetHealthSegment.outOfServiceBit != 0 {
                return nil
            }
        }
        if count == 1 { return 0 }
        let all: UInt64 = count == 64 ? .max : (1 << UInt64(count)) - 1
        return WeightedRoundRobin.next(scores: scores, weights: weightWords, count: count, eligible: all)
    }

    /// `choose`'s shortcut for two targets, both in service by their health words: the smooth
    /// round robin over the two written out (the scores `WeightedRoundRobin.next` leaves with both
    /// eligible: the second only when its score is higher). nil when one is out of service. The
    /// loop over the targets and the round robin's cost ~70 instructions per request more
    /// (docs/performance.md "gateway8").
    @inline(__always)
    private func chooseOfTwo() -> Int? {
        if let word = words[0], UInt64(bitPattern: fluxgate_atomic_load(word)) & TargetHealthSegment.outOfServiceBit != 0 {
            return nil
        }
        if let word = words[1], UInt64(bitPattern: fluxgate_atomic_load(word)) & TargetHealthSegment.outOfServiceBit != 0 {
            return nil
        }
        let first = weightWords[0]
        let second = weightWords[1]
        let firstScore = scores[0] + first
        let secondScore = scores[1] + second
        if secondScore > firstScore {
            scores[0] = firstScore
            scores[1] = secondScore - (first + second)
            return 1
        }
        scores[0] = firstScore - (first + second)
        scores[1] = secondScore
        return 0
    }

    /// `choose` with each target's health read by its cell.
    private func chooseByCells(excluding tried: UInt64, board: TargetHealthBoard, nowMs: Int64) -> Int? {
        if !resolved { _ = cells(on: board) }
        var inService: UInt64 = 0
        var trialDue: UInt64 = 0
        let cellWords = self.cellWords
        for index in 0..<min(count, 64) {
            let bit: UInt64 = 1 << UInt64(index)
            guard tried & bit == 0 else { continue }
            let cell = cellWords[index]
            switch board.availability(cell: cell < 0 ? nil : cell, nowMs: nowMs) {
            case .inService: inService |= bit
            case .trialDue: trialDue |= bit
            case .out: break
            }
        }
        // One target eligible and in service: the round robin would add its weight to its score
        // and take it off again, so it is chosen without touching the scores.
        if trialDue == 0, inService != 0, inService & (inService &- 1) == 0 { return inService.trailingZeroBitCount }
        var eligible = inService | trialDue
        while let chosen = WeightedRoundRobin.next(scores: scores, weights: weightWords, count: count, eligible: eligible) {
            let bit: UInt64 = 1 << UInt64(chosen)
            if inService & bit != 0 { return chosen }
            // One request only: the worker whose compare-and-swap wins sends the trial.
            if board.update(cell: cell(chosen, on: board), { $0.claimingTrial(nowMs: nowMs, policy: self.policy) }) != nil { return chosen }
            eligible &= ~bit
        }
        return nil
    }

    /// The target not in `tried` whose time out of service ends first (health never refuses a
    /// request by itself), with that instant.
    func earliestBack(excluding tried: UInt64, board: TargetHealthBoard, nowMs: Int64) -> (index: Int, until: Int64)? {
        let cells = cells(on: board)
        var best: (index: Int, until: Int64)?
        for index in targets.indices where tried & (1 << UInt64(index)) == 0 {
            let until: Int64
            switch board.health(cell: cells[index]).availability(nowMs: nowMs) {
            case .inService, .trialDue: until = nowMs
            case .out(let end): until = end
            }
            if best.map({ until < $0.until }) ?? true { best = (index, until) }
        }
        return best
    }

    /// Inlined: the usual success is the one load below; the rest is `succeededByCell`.
    @inline(__always)
    func succeeded(_ index: Int, board: TargetHealthBoard, nowMs: Int64) {
        if succeedsByWord(index, board: board) { return }
        succeededByCell(index, board: board, nowMs: nowMs)
    }

    /// `succeeded` with the clock's instant: its milliseconds are worked out only past the one
    /// load of the usual success (the exchange's response head, docs/performance.md "session 16,
    /// gateway").
    @inline(__always)
    func succeeded(_ index: Int, board: TargetHealthBoard, now: NIODeadline) {
        if succeedsByWord(index, board: board) { return }
        succeededByCell(index, board: board, nowMs: TargetHealthBoard.milliseconds(now))
    }

    /// The usual success by the target's health word: nothing to keep (no cell, or nothing
    /// counted). False: `succeededByCell` decides.
    @inline(__always)
    private func succeedsByWord(_ index: Int, board: TargetHealthBoard) -> Bool {
        guard ObjectIdentifier(board) == wordsBoardID else { return false }
        // No cell: nothing to keep (as `isUntouched` says below).
        guard let word = words[index] else { return true }
        return UInt64(bitPattern: fluxgate_atomic_load(word)) & TargetHealthBoard.countedBits == 0
    }

    private func succeededByCell(_ index: Int, board: TargetHealthBoard, nowMs: Int64) {
        let cell = cell(index, on: board)
        // The usual success, of a target in service with nothing counted, changes nothing: one load.
        if board.isUntouched(cell: cell) { return }
        board.update(cell: cell) { $0.succeeding(nowMs: nowMs, policy: self.policy) }
    }

    func failed(_ index: Int, board: TargetHealthBoard, nowMs: Int64) {
        board.update(cell: cells(on: board)[index]) { $0.failing(nowMs: nowMs, policy: self.policy) }
    }
}
