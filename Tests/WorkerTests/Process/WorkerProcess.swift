import Common
import Foundation
import TestSupport

/// The real `fluxgate-worker` started the way the master starts it (docs/architecture.md's
/// descriptor table: its listening socket at fd 3, its control channel at fd 4, the hand-over
/// channel at fd 6), with the test as its master: the test sends control messages and reads the
/// replies. Killed and reaped when the value goes away.
final class WorkerProcess {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let pid: pid_t
    let control: Common.FileDescriptor
    let handover: Common.FileDescriptor
    let listener: Common.FileDescriptor
    let port: Int
    private var decoder = ControlFrameDecoder()

    /// Spawns the worker and sends `configuration` as generation 1 (its first message).
    init(configuration: Configuration, standby: Bool = false) throws {
        listener = try Sockets.listen(on: BindAddress(parsing: "127.0.0.1:0")!)
        port = Int(try Sockets.localAddress(of: listener).port)
        let (ours, theirs) = try Sockets.socketPair()
        let (ourHandover, theirHandover) = try Sockets.socketPair(messages: true)
        defer {
            theirs.close()
            theirHandover.close()
        }
        control = ours
        handover = ourHandover
        pid = try Spawn.spawn(
            executable: Binaries.worker, arguments: ["--slot", "0", "--generation", "1"] + (standby ? ["--standby"] : []),
            environment: ["FLUXGATE_LOG": "warn"],
            inherited: [
                .init(listener, as: WorkerDescriptors.listener), .init(theirs, as: WorkerDescriptors.control),
                .init(theirHandover, as: WorkerDescriptors.handover),
            ])
        try send(ControlMessage(type: .applyConfig, gen: 1, body: .init(config: configuration)))
    }

    func send(_ message: ControlMessage) throws { try control.sendAll(ControlFrame.encode(message)) }

    /// Lends a listening socket as the master does: the descriptor, then `adoptListener`.
    func lend(_ socket: Common.FileDescriptor, as listener: Int) throws {
        try Sockets.sendDescriptor(socket, tag: listener, over: handover)
        try send(ControlMessage(type: .adoptListener, body: .init(listener: listener)))
    }

    /// Whether the worker has `socket` (the very socket, not a copy of its address) open.
    func holds(_ socket: Common.FileDescriptor) -> Bool {
        var status = stat()
        guard fstat(socket.rawValue, &status) == 0 else { return false }
        let name = "socket:[\(status.st_ino)]"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return entries.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == name }
    }

    /// The next message other than a heartbeat, waiting at most `timeout` seconds for it.
    func receive(timeout: Double = 10) throws -> ControlMessage {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let message = try decoder.next() {
                if message.type != .heartbeat { return message }
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure(description: "no control message within \(timeout) s") }
            var descriptor = pollfd(fd: control.rawValue, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            let n = try control.read(into: &buffer)
            guard n > 0 else { throw Failure(description: "the worker closed its control channel") }
            decoder.feed(buffer[0..<n])
        }
    }

    deinit {
        kill(pid, SIGKILL)
        var status: CInt = 0
        waitpid(pid, &status, 0)
        control.close()
        handover.close()
        listener.close()
    }
}
