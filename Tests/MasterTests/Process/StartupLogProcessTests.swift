import Foundation
import Testing
import TestSupport

/// The master's start-up lines as Fluxgate writes them (docs/logging.md "System messages"): a
/// parser written for Fluxgate's lines reads these. A path is bare unless it needs quotes; the
/// literal `status="applied"` is always quoted.
@Suite(.serialized) struct StartupLogProcessTests {
    /// Each line without its timestamp and level: `<message> key=value …`.
    static func messages(_ output: String) -> [String] {
        output.split(separator: "\n").map { line in
            let afterTimestamp = line.drop { $0 != " " }.drop { $0 == " " }
            return String(afterTimestamp.drop { $0 != " " }.dropFirst())
        }
    }

    @Test func aSuccessfulStartWritesFluxgatesLinesInFluxgatesOrder() throws {
        let master = try MasterFixture(workers: 1)
        let path = master.configPath
        let lines = Self.messages(master.process.stdout)
        let expected = [
            "Starting fluxgate proxy with configuration path path=\(path)",
            "Loaded configuration path=\(path) status=\"applied\"",
            "Fluxgate proxy initialized path=\(path)",
        ]
        let positions = expected.map { lines.firstIndex(of: $0) }
        #expect(positions.allSatisfy { $0 != nil }, "\(master.process.stdout)")
        let found = positions.compactMap { $0 }
        #expect(found == found.sorted(), "the three lines come in this order")
        let listening = lines.firstIndex { $0.hasPrefix("Fluxgate proxy server listening on ") }
        #expect(listening != nil && found.allSatisfy { $0 < listening! }, "all three before the listening line")
    }

    @Test func aPathWithASpaceIsQuotedAndARejectedFileIsNeverInitialized() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("my config.yaml", "version: 1\nserver:\n  max_connections: 0\n")
        let master = try ChildProcess(
            Binaries.fluxgate, ["--config", path, "--control-socket", directory.path + "/c.sock"],
            environment: ["FLUXGATE_LOG": "info"])
        #expect(master.waitForExit(timeout: 30) == 78)
        let lines = Self.messages(master.stdout)
        #expect(lines.first == "Starting fluxgate proxy with configuration path path=\"\(path)\"", "\(master.stdout)")
        #expect(lines.contains("Configuration rejected; not starting errors=1 path=\"\(path)\""), "\(master.stdout)")
        #expect(!master.stdout.contains("Loaded configuration"))
        #expect(!master.stdout.contains("Fluxgate proxy initialized"))
    }
}
