import Common
import Foundation
import TestSupport

/// The real `fluxgate-worker` started the way the master starts it (docs/architecture.md's
/// descriptor table: its listening socket at fd 3, its control channel at fd 4), with the test as
/// its master: the test sends control messages and reads the replies. Killed and reaped when the
/// value goes away.
final class WorkerProcess {
    struct Failure: Error, CustomStringConvertible { var description: String }

    let pid: pid_t
    let control: Common.FileDescriptor
    let listener: Common.FileDescriptor
    let port: Int
    private var decoder = ControlFrameDecoder()

    /// Spawns the worker and sends `configuration` as generation 1 (its first message).
    init(configuration: Configuration, standby: Bool = false) throws {
        listener = try Sockets.listen(on: BindAddress(parsing: "127.0.0.1:0")!)
        port = Int(try Sockets.localAddress(of: listener).port)
        let (ours, theirs) = try Sockets.socketPair()
        defer { theirs.close() }
        control = ours
        pid = try Spawn.spawn(
            executable: Binaries.worker, arguments: ["--slot", "0", "--generation", "1"] + (standby ? ["--standby"] : []),
            environment: ["FLUXGATE_LOG": "warn"],
            inherited: [.init(listener, as: WorkerDescriptors.listener), .init(theirs, as: WorkerDescriptors.control)])
        try send(ControlMessage(type: .applyConfig, gen: 1, body: .init(config: configuration)))
    }

    func send(_ message: ControlMessage) throws { try control.sendAll(ControlFrame.encode(message)) }

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
        listener.close()
    }
}
