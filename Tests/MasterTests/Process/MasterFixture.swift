import Foundation
import TestSupport

/// The real master with its workers on 127.0.0.1, in front of a mock upstream, with its own
/// control socket; the configuration can be rewritten and reloaded. Killed when it goes away.
final class MasterFixture: @unchecked Sendable {
    let directory: TemporaryDirectory
    let configPath: String
    let socketPath: String
    let mock: MockUpstream
    let process: ChildProcess
    let port: Int
    /// More top-level YAML after the upstreams (an `observability:` section), kept by `rewrite`.
    let extraYAML: String

    struct Failure: Error, CustomStringConvertible { var description: String }

    init(
        workers: Int = 2, maxConnections: Int = 1024, requestPath: String = "/openai", clientKeys: [String] = [],
        environment: [String: String] = [:], expectStart: Bool = true, extraYAML: String = ""
    ) throws {
        self.extraYAML = extraYAML
        directory = try TemporaryDirectory()
        mock = try MockUpstream()
        configPath = directory.path + "/fluxgate.yaml"
        socketPath = directory.path + "/control.sock"
        try Self.write(
            Self.yaml(
                mock: mock, address: "127.0.0.1:0", workers: workers, maxConnections: maxConnections,
                requestPath: requestPath, clientKeys: clientKeys) + extraYAML, to: configPath)
        process = try ChildProcess(
            Binaries.fluxgate, ["--config", configPath, "--control-socket", socketPath],
            environment: ["FLUXGATE_LOG": "info"].merging(environment) { _, new in new })
        guard expectStart else { port = 0; return }
        guard let line = process.waitForLine(containing: "Fluxgate proxy server listening on", timeout: 60),
            let match = line.firstMatch(of: /listening on \S*:(\d+)/), let port = Int(match.1)
        else {
            process.signal(SIGKILL)
            throw Failure(description: "fluxgate did not start\n\(process.stdout)\n\(process.stderr)")
        }
        self.port = port
    }

    /// `clientKeys` become `api_keys.static` entries (none: an open proxy).
    static func yaml(
        mock: MockUpstream, address: String, workers: Int, maxConnections: Int = 1024,
        requestPath: String = "/openai", clientKeys: [String] = []
    ) -> String {
        let keys = clientKeys.isEmpty ? "" : "api_keys:\n  static:\n" + clientKeys.map { "    - key: \"\($0)\"\n" }.joined()
        return """
            version: 1
            server:
              bind_address: "\(address)"
              workers: \(workers)
              max_connections: \(maxConnections)
            upstreams:
              openai:
                request_path: "\(requestPath)"
                target_url: "\(mock.baseURL)"
                api_key: "sk-test"
            \(keys)
            """
    }

    /// Replaces the file atomically (write + rename), as editors and config management do.
    static func write(_ text: String, to path: String) throws {
        try text.write(toFile: path + ".tmp", atomically: false, encoding: .utf8)
        guard rename(path + ".tmp", path) == 0 else { throw Failure(description: "rename failed: \(errno)") }
    }

    func rewrite(
        address: String? = nil, workers: Int = 2, maxConnections: Int = 1024, requestPath: String = "/openai",
        clientKeys: [String] = []
    ) throws {
        try Self.write(
            Self.yaml(
                mock: mock, address: address ?? "127.0.0.1:\(port)", workers: workers,
                maxConnections: maxConnections, requestPath: requestPath, clientKeys: clientKeys) + extraYAML,
            to: configPath)
    }

    /// `fluxgate reload` against this master: waits for the outcome.
    func reload() throws -> (status: Int32, stdout: String, stderr: String) {
        try ChildProcess.run(Binaries.fluxgate, ["reload", "--control-socket", socketPath], timeout: 60)
    }

    func status() throws -> (status: Int32, stdout: String, stderr: String) {
        try ChildProcess.run(Binaries.fluxgate, ["status", "--control-socket", socketPath], timeout: 30)
    }

    var workerPIDs: [Int32] {
        let path = "/proc/\(process.pid)/task/\(process.pid)/children"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: " ").compactMap { Int32($0) }
    }

    /// Waits until the master has `count` workers (e.g. after a kill or a worker-count change).
    @discardableResult
    func waitForWorkers(_ count: Int, excluding gone: Set<Int32> = [], timeout: Double = 30) -> [Int32] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let pids = workerPIDs
            if pids.count == count, gone.isDisjoint(with: pids) { return pids }
            usleep(50_000)
        }
        return workerPIDs
    }

    func get(
        _ path: String = "/openai/v1/models", port: Int? = nil, headers: [(String, String)] = []
    ) throws
        -> RawConnection.Response
    {
        try RawConnection(port: port ?? self.port, timeout: 15).request("GET", path, headers: headers)
    }

    func logLines(containing text: String) -> [String] {
        process.stdout.split(separator: "\n").filter { $0.contains(text) }.map(String.init)
    }

    deinit { _ = process.signal(SIGKILL) }
}

/// Several client threads sending requests until stopped; counts every failure (a refused or
/// reset connection, a non-200 answer). Each request gets a new connection, or with `keepAlive`
/// the previous one is reused until the server answers `Connection: close` (as wrk and HTTP
/// client libraries do): a request sent on a connection the server then closes fails, since a
/// POST cannot be retried blindly.
final class LoadGenerator: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var succeeded = 0
    private(set) var failures: [String] = []
    private var threads: [Thread] = []
    private let done = DispatchGroup()
    private var portValue: Int

    init(
        port: Int, threads count: Int = 4, path: String = "/openai/v1/models", maxRequestsPerThread: Int = 20_000,
        keepAlive: Bool = false
    ) {
        portValue = port
        for _ in 0..<count {
            done.enter()
            let thread = Thread { [self] in
                var sent = 0
                var kept: RawConnection?
                while !isStopped, sent < maxRequestsPerThread {
                    sent += 1
                    let port = currentPort
                    do {
                        let connection = try kept ?? RawConnection(port: port, timeout: 15)
                        let response = try connection.request("GET", path)
                        record(response.status == 200 ? nil : "status \(response.status) on port \(port)")
                        let closing = response.header("connection")?.lowercased() == "close"
                        kept = keepAlive && !closing ? connection : nil
                    } catch {
                        record("\(error) on port \(port)\(kept == nil ? "" : " (reused connection)")")
                        kept = nil
                    }
                }
                done.leave()
            }
            threads.append(thread)
            thread.start()
        }
    }

    var port: Int {
        get { currentPort }
        set { lock.withLock { portValue = newValue } }
    }
    private var currentPort: Int { lock.withLock { portValue } }
    private var isStopped: Bool { lock.withLock { stopped } }

    private func record(_ failure: String?) {
        lock.withLock {
            if let failure { failures.append(failure) } else { succeeded += 1 }
        }
    }

    /// Stops the clients and returns (successes, failures).
    func stop() -> (succeeded: Int, failures: [String]) {
        lock.withLock { stopped = true }
        done.wait()
        return lock.withLock { (succeeded, failures) }
    }
}
