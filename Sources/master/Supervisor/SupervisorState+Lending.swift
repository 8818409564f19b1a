import Common

// Lending a slot's sockets while it has no accepting worker (docs/operations.md, "Crashes,
// restarts, watchdog"). On Linux each SO_REUSEPORT socket has its own accept queue and the kernel
// keeps hashing new connections to it whether or not anyone accepts there: with the slot's worker
// dead, they would wait for its replacement, and after repeated crashes for the respawn backoff.
// So a surviving worker accepts on the socket meanwhile. The rule of docs/architecture.md holds
// throughout: two processes never accept on one socket at the same time. The replacement starts in
// standby, the borrower gives the socket back once the replacement is ready, and only when the
// borrower has reported `listenerReleased` does the replacement get `startAccepting`.
extension SupervisorState {
    /// Lends every socket of the current layout that nobody accepts on, and whose slot's worker
    /// will not accept by itself (none, or one starting in standby), to a survivor: a ready,
    /// accepting worker of the current layout, the one with the fewest loans (then the lowest
    /// slot). Without a survivor nothing is lent and the slot waits for its own worker.
    mutating func lendUnservedSockets() {
        guard case .running = phase else { return }
        for slot in current.slots {
            if let id = slot.worker, workers[id]?.accepting == true { continue }
            for listener in slot.listeners where !hasAcceptor(listener, other: nil) {
                guard let lender = survivor() else { return }
                workers[lender]?.borrowed[listener] = .lent
                emit(.send(lender, .adoptListener(listener)))
            }
        }
    }

    private func survivor() -> WorkerID? {
        current.slots.compactMap { $0.worker.flatMap { workers[$0] } }
            .filter { $0.phase == .ready && $0.accepting }
            .min { ($0.borrowed.count, $0.slot) < ($1.borrowed.count, $1.slot) }?.id
    }

    /// Asks every borrower of one of `listeners` to give it back (once per loan).
    mutating func recallLoans(of listeners: [ListenerID]) {
        for id in workers.keys.sorted() {
            for listener in listeners where workers[id]?.borrowed[listener] == .lent {
                workers[id]?.borrowed[listener] = .returning
                emit(.send(id, .releaseListener(listener)))
            }
        }
    }

    /// The borrower no longer accepts on `listener`: its slot's worker may start.
    mutating func listenerReleased(_ listener: ListenerID, by id: WorkerID) {
        workers[id]?.borrowed[listener] = nil
        startFreeAcceptors()
    }
}
