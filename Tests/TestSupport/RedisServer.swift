import Foundation

/// A real `redis-server` (Debian's package) on a free loopback port, without persistence, for one
/// test: stopped by its PID (SIGKILL) when the value goes away.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let process: ChildProcess

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `port`: a given one (a new Redis where a killed one was), else a free one.
    public init(port: Int? = nil) throws {
        let port = try port ?? TestPorts.closedPort()
        self.port = port
        process = try ChildProcess(
            "/usr/bin/redis-server",
            ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
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
        let result = try ChildProcess.run("/usr/bin/redis-cli", ["-p", String(port)] + arguments, timeout: 10)
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func signal(_ signal: Int32) { process.signal(signal) }

    public func kill() {
        process.signal(SIGKILL)
        _ = process.waitForExit(timeout: 10)
    }
}
