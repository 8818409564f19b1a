import Foundation

/// Tests/Fixtures/tls_mock_upstream.py: an HTTPS upstream on Python's `ssl` module, so that
/// verification is tested against a TLS implementation that is not ours.
public final class TLSMockUpstream: @unchecked Sendable {
    public let process: ChildProcess
    public let port: Int

    public enum Failure: Error { case didNotStart(String) }

    public init(certificate: String, key: String) throws {
        let script = Binaries.packageRoot + "/Tests/Fixtures/tls_mock_upstream.py"
        process = try ChildProcess(Tools.find("python3") ?? "/usr/bin/python3", [script, certificate, key])
        guard let line = process.waitForLine(containing: "PORT ", timeout: 20),
            let port = Int(line.split(separator: " ").last ?? "")
        else {
            throw Failure.didNotStart(process.stderr)
        }
        self.port = port
    }

    /// `https://localhost:PORT`.
    public var baseURL: String { "https://localhost:\(port)" }
}

extension ChildProcess {
    /// Runs a shell command line to completion (pipelines of curl and openssl).
    public static func shell(_ command: String, timeout: Double = 120) throws -> (status: Int32, stdout: String, stderr: String) {
        try run("/bin/sh", ["-c", command], timeout: timeout)
    }
}
