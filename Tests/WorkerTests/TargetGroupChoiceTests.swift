import Common
import Testing

@testable import FluxgateWorker

/// `TargetGroup.choose`'s first-try shortcut (every target in service, read by its health word)
/// chooses as the path by cells does, and a success or a target out of service is kept as before.
@Suite struct TargetGroupChoiceTests {
    static func group(weights: [Int], failures: Int = 2) -> TargetGroup {
        var upstream = Fixtures.upstream("weighted", "/w")
        upstream.targets = weights.enumerated().map { index, weight in
            Configuration.Target(targetURL: Fixtures.url(.http, "t\(index)"), apiKey: Secret("k"), weight: weight)
        }
        upstream.health = Configuration.Health(failures: failures, cooldownMs: 60_000)
        return TargetGroup(upstream, attemptTimeoutMs: 1_000)
    }

    @Test func theShortcutChoosesAsThePathByCells() {
        let board = TargetHealthBoard(segment: nil)
        let other = TargetHealthBoard(segment: nil)
        let shortcut = Self.group(weights: [5, 1, 3, 2])
        let byCells = Self.group(weights: [5, 1, 3, 2])
        // Resolved on `board`, asked with `other`: the path by cells.
        _ = byCells.cells(on: board)
        var rr = WeightedRoundRobin(count: 4)
        for step in 0..<200 {
            let expected = rr.next(weights: [5, 1, 3, 2], eligible: 0b1111)
            #expect(shortcut.choose(excluding: 0, board: board, nowMs: 1_000) == expected, "step \(step)")
            #expect(byCells.choose(excluding: 0, board: other, nowMs: 1_000) == expected, "step \(step)")
        }
    }

    /// Two targets take the round robin written out for two (`chooseOfTwo`): the same choices
    /// as the round robin and the path by cells, for equal and unequal weights.
    @Test(arguments: [[1, 1], [3, 2], [1, 4], [7, 7], [2, 5]])
    func twoTargetsChooseAsTheRoundRobin(weights: [Int]) {
        let board = TargetHealthBoard(segment: nil)
        let other = TargetHealthBoard(segment: nil)
        let shortcut = Self.group(weights: weights)
        let byCells = Self.group(weights: weights)
        _ = shortcut.cells(on: board)
        _ = byCells.cells(on: board)
        var rr = WeightedRoundRobin(count: 2)
        for step in 0..<200 {
            let expected = rr.next(weights: weights, eligible: 0b11)
            #expect(shortcut.choose(excluding: 0, board: board, nowMs: 1_000) == expected, "step \(step)")
            #expect(byCells.choose(excluding: 0, board: other, nowMs: 1_000) == expected, "step \(step)")
        }
    }

    @Test func oneOfTwoTargetsOutOfServiceIsNotChosen() {
        let board = TargetHealthBoard(segment: nil)
        let group = Self.group(weights: [1, 1])
        group.failed(0, board: board, nowMs: 1_000)
        group.failed(0, board: board, nowMs: 1_000)
        let picks = (0..<10).compactMap { _ in group.choose(excluding: 0, board: board, nowMs: 2_000) }
        #expect(picks == Array(repeating: 1, count: 10))
    }

    @Test func aTargetOutOfServiceIsNotChosen() {
        let board = TargetHealthBoard(segment: nil)
        let group = Self.group(weights: [1, 1, 1])
        group.failed(1, board: board, nowMs: 1_000)
        group.failed(1, board: board, nowMs: 1_000)
        let picks = (0..<30).compactMap { _ in group.choose(excluding: 0, board: board, nowMs: 2_000) }
        #expect(picks.count == 30)
        #expect(Set(picks) == [0, 2])
    }

    @Test func aSuccessClearsACountedFailure() {
        let board = TargetHealthBoard(segment: nil)
        let group = Self.group(weights: [1, 1])
        group.failed(0, board: board, nowMs: 1_000)
        let cell = group.cells(on: board)[0]
        #expect(board.health(cell: cell).failures == 1)
        group.succeeded(0, board: board, nowMs: 1_001)
        #expect(board.health(cell: cell).failures == 0)
        group.succeeded(1, board: board, nowMs: 1_002)
        #expect(board.isUntouched(cell: group.cells(on: board)[1]))
    }
}
