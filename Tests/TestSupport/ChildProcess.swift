import Foundation

/// A process a test started: its output is collected as it arrives, and it is killed (and reaped)
/// when the value goes away, so no test leaves a process behind.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let condition = NSCondition()
    private var stdoutData = Data()
    private var stderrData = Data()
    private var exited = false
    private var openStreams = 2

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("FLUXGATE_") { env[key] = nil }
        if let environment { env.merge(environment) { _, new in new } }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        // One thread per stream doing blocking reads: a read returns 0 bytes exactly at end of file,
        // which readabilityHandler does not reliably report.
        for (handle, isStdout) in [(out.fileHandleForReading, true), (err.fileHandleForReading, false)] {
            Thread.detachNewThread { [weak self] in
                while true {
                    let data = handle.availableData
                    guard let self else { return }
                    self.append(data, toStdout: isStdout)
                    if data.isEmpty { return }
                }
            }
        }
        process.terminationHandler = { [weak self] _ in
            guard let self else { return }
            self.condition.lock()
            self.exited = true
            self.condition.broadcast()
            self.condition.unlock()
        }
        try process.run()
    }

    private func append(_ data: Data, toStdout: Bool) {
        condition.lock()
        if data.isEmpty { openStreams -= 1 }  // end of file: every writer (the process and its children) is gone
        if toStdout { stdoutData.append(data) } else { stderrData.append(data) }
        condition.broadcast()
        condition.unlock()
    }

    public var pid: Int32 { process.processIdentifier }
    public var stdout: String { condition.lock(); defer { condition.unlock() }; return String(decoding: stdoutData, as: UTF8.self) }
    public var stderr: String { condition.lock(); defer { condition.unlock() }; return String(decoding: stderrData, as: UTF8.self) }

    /// Waits until `predicate` holds for everything on stdout so far (re-checked on each new
    /// output), the process exits, or the timeout passes. Returns whether it held.
    @discardableResult
    public func waitForStdout(timeout: Double = 20, until predicate: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if predicate(String(decoding: stdoutData, as: UTF8.self)) { return true }
            if (exited && openStreams == 0) || !condition.wait(until: deadline) {
                return predicate(String(decoding: stdoutData, as: UTF8.self))
            }
        }
    }

    /// Waits until stdout has a line containing `text`; returns the line.
    public func waitForLine(containing text: String, timeout: Double = 20) -> String? {
        var found: String?
        waitForStdout(timeout: timeout) { output in
            found = output.split(separator: "\n").first { $0.contains(text) }.map(String.init)
            return found != nil
        }
        return found
    }

    /// Waits for the process to exit and its output to end; returns its status, or nil when it
    /// is still running at the timeout.
    public func waitForExit(timeout: Double = 20) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        while !exited || openStreams > 0 {
            if !condition.wait(until: deadline) { break }
        }
        let done = exited
        condition.unlock()
        guard done else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    public func signal(_ signal: Int32) { if process.isRunning { kill(pid, signal) } }

    deinit {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Runs a command to completion (for short commands such as `fluxgate -t`).
    public static func run(
        _ executable: String, _ arguments: [String], timeout: Double = 30
    ) throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let child = try ChildProcess(executable, arguments)
        guard let status = child.waitForExit(timeout: timeout) else {
            throw NSError(
                domain: "ChildProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(executable) did not exit within \(timeout) s"])
        }
        return (status, child.stdout, child.stderr)
    }
}
