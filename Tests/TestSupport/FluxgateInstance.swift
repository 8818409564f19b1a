import Foundation

/// The real `fluxgate` master (and its workers) started on 127.0.0.1 with an ephemeral port from
/// a configuration the test writes. Stopped with SIGTERM, or killed, when the value goes away.
public final class FluxgateInstance: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let configPath: String
    public let process: ChildProcess
    public let port: Int
    /// The master's operator socket (`fluxgate reload`/`status`), private to this instance.
    public let controlSocket: String

    public enum Failure: Error, CustomStringConvertible {
        case didNotStart(stdout: String, stderr: String)
        public var description: String {
            switch self {
            case .didNotStart(let out, let err): return "fluxgate did not start\nstdout:\n\(out)\nstderr:\n\(err)"
            }
        }
    }

    /// `yaml` is the whole configuration file; use `127.0.0.1:0` as the bind address.
    public init(yaml: String, environment: [String: String] = [:], startTimeout: Double = 30) throws {
        directory = try TemporaryDirectory()
        configPath = try directory.write("fluxgate.yaml", yaml)
        controlSocket = directory.path + "/control.sock"
        process = try ChildProcess(
            Binaries.fluxgate, ["--config", configPath, "--control-socket", controlSocket],
            environment: environment)
        // Text or JSON log format alike: "... listening on 127.0.0.1:PORT".
        guard let line = process.waitForLine(containing: "Fluxgate proxy server listening on", timeout: startTimeout),
            let match = line.firstMatch(of: /listening on \S*:(\d+)/), let port = Int(match.1)
        else {
            process.signal(SIGKILL)
            throw Failure.didNotStart(stdout: process.stdout, stderr: process.stderr)
        }
        self.port = port
    }

    public var pid: Int32 { process.pid }

    /// The master's direct children: its workers.
    public var workerPIDs: [Int32] {
        let path = "/proc/\(pid)/task/\(pid)/children"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: " ").compactMap { Int32($0) }
    }

    /// Resident set size of a process in KiB (from /proc/PID/status).
    public static func rssKiB(of pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// Every stdout line containing `text`.
    public func logLines(containing text: String) -> [String] {
        process.stdout.split(separator: "\n").filter { $0.contains(text) }.map(String.init)
    }

    /// Waits until `count` lines containing `text` were logged (request lines are written after
    /// the response, so a test waits for them rather than assuming).
    @discardableResult
    public func waitForLogLines(containing text: String, count: Int, timeout: Double = 10) -> [String] {
        process.waitForStdout(timeout: timeout) { output in
            output.split(separator: "\n").filter { $0.contains(text) }.count >= count
        }
        return logLines(containing: text)
    }

    /// `fluxgate reload`: returns when the master has applied (or rejected) the file.
    public func reload() throws -> (status: Int32, stdout: String, stderr: String) {
        try ChildProcess.run(Binaries.fluxgate, ["reload", "--control-socket", controlSocket], timeout: 60)
    }

    public func connect(timeout: Double = 10) throws -> RawConnection { try RawConnection(port: port, timeout: timeout) }

    /// SIGTERM, then wait for the master to exit; returns its status.
    @discardableResult
    public func stop(timeout: Double = 40) -> Int32? {
        process.signal(SIGTERM)
        return process.waitForExit(timeout: timeout)
    }
}
