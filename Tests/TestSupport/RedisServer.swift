import Foundation

/// A real `redis-server` (Debian's package) on a free loopback port, without persistence, for one
/// test: stopped by its PID (SIGKILL) when the value goes away.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let process: ChildProcess

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `--tls --cacert` for `redis-cli` when the server speaks only TLS.
    private let cliTLS: [String]

    /// `port`: a given one (a new Redis where a killed one was), else a free one. With `tls`
    /// (a certificate and key issued by `tls.caFile`), the server accepts only TLS on `port`.
    public init(port: Int? = nil, tls: (certificate: String, key: String, caFile: String)? = nil) throws {
        let port = try port ?? TestPorts.closedPort()
        self.port = port
        var listen = ["--port", String(port)]
        if let tls {
            listen = [
                "--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.certificate, "--tls-key-file", tls.key,
                "--tls-ca-cert-file", tls.caFile, "--tls-auth-clients", "no",
            ]
            cliTLS = ["--tls", "--cacert", tls.caFile]
        } else {
            cliTLS = []
        }
        process = try ChildProcess(
            "/usr/bin/redis-server",
            listen + ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? cli("PING")) == "PONG" { return }
            usleep(20_000)
        }
        process.signal(SIGKILL)
        throw Failure(description: "redis-server did not answer PING\n\(process.stdout)\n\(process.stderr)")
    }

    /// One command through `redis-cli`; its output without the trailing newline.
    public func cli(_ arguments: String...) throws -> String {
        let result = try ChildProcess.run("/usr/bin/redis-cli", ["-p", String(port)] + cliTLS + arguments, timeout: 10)
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func signal(_ signal: Int32) { process.signal(signal) }

    public func kill() {
        process.signal(SIGKILL)
        _ = process.waitForExit(timeout: 10)
    }
}
