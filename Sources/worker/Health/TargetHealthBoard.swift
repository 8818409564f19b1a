import Common
import NIOCore

/// The worker's side of the shared health segment (`TargetHealthSegment`): reads a target's
/// `TargetHealth` and applies its transitions with a compare-and-swap, so a target taken out by
/// one worker is skipped by every other at its next choice. Without a segment from the master
/// (a worker started alone, the tests' in-process servers) it makes one of its own.
final class TargetHealthBoard: Sendable {
    private let segment: TargetHealthSegment?

    init(segment: TargetHealthSegment?) {
        self.segment = segment ?? (try? TargetHealthSegment.create())
    }

    /// The cell of a target (nil when the segment is full or missing: the target is then
    /// always in service, as without health).
    func cell(upstream: String, origin: String) -> Int? {
        segment?.cell(forKey: TargetHealthSegment.key(upstream: upstream, origin: origin))
    }

    /// The cell's health word where it lies in the segment (nil without a cell or a segment): a
    /// `TargetGroup` reads it per choice without the cell's arithmetic.
    func word(cell: Int?) -> UnsafeMutablePointer<Int64>? {
        guard let cell, let segment else { return nil }
        return segment.stateWord(cell)
    }

    /// Bits 0–14 of the word (`TargetHealth`): failures, ejections, out, trial. None set: a success
    /// changes nothing (`isUntouched`).
    static let countedBits: UInt64 = 0x7FFF

    func health(cell: Int?) -> TargetHealth {
        guard let cell, let segment else { return TargetHealth() }
        return TargetHealth(word: segment.load(cell: cell))
    }

    /// `health(cell:).availability(nowMs:)`, decoding the word only when it is out of service
    /// (the usual target is in service: one load and a test).
    func availability(cell: Int?, nowMs: Int64) -> TargetHealth.Availability {
        guard let cell, let segment else { return .inService }
        let word = segment.load(cell: cell)
        if word & TargetHealthSegment.outOfServiceBit == 0 { return .inService }
        return TargetHealth(word: word).availability(nowMs: nowMs)
    }

    /// The target is in service with no failure, ejection or trial counted (or has no cell): a
    /// success leaves it as it is (`TargetHealth.succeeding`).
    func isUntouched(cell: Int?) -> Bool {
        guard let cell, let segment else { return true }
        return segment.load(cell: cell) & Self.countedBits == 0
    }

    /// Applies `transition` to the cell's current value until no other worker raced it; writes
    /// nothing when the value does not change (a healthy target's success costs one load).
    /// Returns the value written, or nil when `transition` refused.
    @discardableResult
    func update(cell: Int?, _ transition: (TargetHealth) -> TargetHealth?) -> TargetHealth? {
        guard let cell, let segment else { return nil }
        for _ in 0..<16 {
            let word = segment.load(cell: cell)
            guard let next = transition(TargetHealth(word: word)) else { return nil }
            let desired = next.word
            if desired == word || segment.compareExchange(cell: cell, expected: word, desired: desired) { return next }
        }
        return nil
    }

    /// Milliseconds of the monotonic clock, the segment's time base (the same in every process).
    static func milliseconds(_ instant: NIODeadline) -> Int64 { Int64(instant.uptimeNanoseconds / 1_000_000) }
}
