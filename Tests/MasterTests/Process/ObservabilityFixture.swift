import Foundation
import TestSupport

/// A master with `observability.listen` on a free loopback port, and what the tests read from it.
extension MasterFixture {
    static func withObservability(workers: Int = 2, clientKeys: [String] = []) throws -> (MasterFixture, Int) {
        let port = try TestPorts.closedPort()
        let master = try MasterFixture(
            workers: workers, clientKeys: clientKeys, extraYAML: "observability:\n  listen: \"127.0.0.1:\(port)\"\n")
        return (master, port)
    }
}

/// Reads `/metrics` text.
struct Scrape {
    let text: String

    init(port: Int) throws {
        let response = try RawConnection(port: port, timeout: 10).request("GET", "/metrics")
        text = String(decoding: response.body, as: UTF8.self)
    }

    /// The value of every sample of `name` (without the family's other suffixes) whose labels
    /// contain every one of `labels` (`key="value"` strings).
    func values(_ name: String, _ labels: [String] = []) -> [Double] {
        text.split(separator: "\n").compactMap { line -> Double? in
            guard !line.hasPrefix("#"), line.hasPrefix(name + "{") || line.hasPrefix(name + " ") else { return nil }
            guard labels.allSatisfy({ line.contains($0) }), let value = line.split(separator: " ").last else { return nil }
            return Double(value)
        }
    }

    /// Scrapes until `condition` holds (nil after `timeout` seconds).
    static func wait(port: Int, timeout: Double = 30, until condition: (Scrape) -> Bool) throws -> Scrape? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let scrape = try Scrape(port: port)
            if condition(scrape) { return scrape }
            usleep(50_000)
        }
        return nil
    }

    func sum(_ name: String, _ labels: [String] = []) -> Double { values(name, labels).reduce(0, +) }
}

/// Runs `promtool` with `input` on stdin; returns its status and output.
func promtool(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
    let directory = try TemporaryDirectory()
    let file = try directory.write("input", input)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
    process.arguments = arguments
    process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: file))
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
