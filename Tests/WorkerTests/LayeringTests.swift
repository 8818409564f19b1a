import Foundation
import Testing

/// The worker's folders are layers (docs/architecture.md, "The data plane of a worker"): the
/// HTTP/1 wire code in `Sources/worker/HTTP1` depends on nothing above it. All of the worker is one
/// Swift module, so the compiler cannot hold that line; this test reads the sources and does.
@Suite struct LayeringTests {
    static let worker = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/worker")

    /// The Swift files below `folder` of the worker's sources, as (name, code without comments).
    static func sources(in folder: String) throws -> [(String, String)] {
        let root = worker.appendingPathComponent(folder)
        let names = try FileManager.default.subpathsOfDirectory(atPath: root.path).filter { $0.hasSuffix(".swift") }
        return try names.sorted().map { name in
            let text = try String(contentsOf: root.appendingPathComponent(name), encoding: .utf8)
            let code = text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
                .joined(separator: "\n")
            return (name, code)
        }
    }

    /// Top-level types declared in `code` (nested ones are reached through these).
    static func declaredTypes(_ code: String) -> [String] {
        let declaration =
            /^(?:(?:public|internal|private|fileprivate|final|indirect)\s+)*(?:struct|enum|class|protocol|typealias|actor)\s+(\w+)/
            .anchorsMatchLineEndings()
        return code.matches(of: declaration).map { String($0.1) }
    }

    @Test func theWireLayerNamesNothingAboveIt() throws {
        let above = [
            "Proxy", "Server", "Routing", "Auth", "Control", "TLS", "Connection", "Pipeline", "Exchange", "Worker", "IO", "Logging",
            "Usage", "Health", "StreamUsage",
        ]
        let names = try above.flatMap { try Self.sources(in: $0) }.flatMap { Self.declaredTypes($0.1) }
        #expect(names.contains("ProxyErrorResponse") && names.contains("WorkerLimits") && names.contains("Router"))
        let wire = try Self.sources(in: "HTTP1")
        #expect(wire.map(\.0).contains("RequestParser.swift"))
        for (file, code) in wire {
            #expect(!code.contains("import Common"), "\(file) imports Common")
            let words = Set(code.split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init))
            for name in names where words.contains(name) {
                Issue.record("HTTP1/\(file) uses \(name), which is declared above the wire layer")
            }
        }
    }
}
