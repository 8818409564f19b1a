import NIOCore

/// A deadline with at most one scheduled task behind it, re-armed lazily.
///
/// Scheduling and cancelling an NIO task costs an allocation, a promise and a heap insertion and
/// removal. Deadlines on a proxied connection move forward with every request (header timeout,
/// response timeout, keep-alive timeout) and almost never expire, so `set` schedules nothing when
/// the pending task fires no later than the new deadline: the task, when it fires early, finds the
/// deadline later and schedules itself again for it. A keep-alive connection then schedules about
/// once per timeout period instead of two or three times per request. Loop-bound, like its owner.
final class LazyTimer {
    private let eventLoop: EventLoop
    private var deadline: NIODeadline?
    /// When the pending task fires; nil when none is pending.
    private var firesAt: NIODeadline?
    private var task: Scheduled<Void>?
    /// Called once when the current deadline passes (not when it was cleared or moved before).
    var onExpiry: (() -> Void)?

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Expire at `deadline`; nil disarms (the pending task, if any, then fires and does nothing).
    func set(_ deadline: NIODeadline?) {
        self.deadline = deadline
        guard let deadline else { return }
        if let firesAt, firesAt <= deadline { return }
        schedule(at: deadline)
    }

    /// Expire `amount` from now.
    func set(in amount: TimeAmount) { set(.now() + amount) }

    /// Disarms and cancels the pending task: for when the owner goes away (a closed connection
    /// must not keep a task, and what it captures, alive until its timeout).
    func invalidate() {
        deadline = nil
        onExpiry = nil
        task?.cancel()
        task = nil
        firesAt = nil
    }

    private func schedule(at when: NIODeadline) {
        task?.cancel()
        firesAt = when
        // Strong: the task keeps the timer until it fires or `invalidate` cancels it (the owner
        // does when it goes away). A `weak` capture would give the timer a side table, and
        // every retain of it (a few per request) the slow path.
        task = eventLoop.assumeIsolated().scheduleTask(deadline: when) { [self] in
            fired()
        }
    }

    private func fired() {
        task = nil
        firesAt = nil
        guard let deadline else { return }
        if deadline <= .now() {
            self.deadline = nil
            onExpiry?()
        } else {
            schedule(at: deadline)
        }
    }
}
