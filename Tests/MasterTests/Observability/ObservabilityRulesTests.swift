import Foundation
import Testing
import Common
@testable import FluxgateMaster

/// docs/prometheus/fluxgate-rules.yaml and docs/grafana/fluxgate.json: Prometheus accepts the
/// rules, and both use only metrics `/metrics` has.
@Suite struct ObservabilityRulesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let rules = root.appendingPathComponent("docs/prometheus/fluxgate-rules.yaml").path
    static let dashboard = root.appendingPathComponent("docs/grafana/fluxgate.json").path

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool")))
    func promtoolAcceptsTheRules() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "rules", Self.rules]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("SUCCESS: 6 rules found"), "\(text)")
    }

    @Test func theDashboardAndRulesUseOnlyExportedMetrics() throws {
        let exported = Set(
            MetricsRenderer.render(HostMetrics(version: "test")).split(separator: "\n")
                .filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
        for file in [Self.rules, Self.dashboard] {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let used = Set(text.matches(of: /fluxgate_[a-z_]+/).map { String($0.output) })
            #expect(!used.isEmpty)
            for name in used {
                let family = name.replacing(/_(bucket|sum|count)$/, with: "")
                #expect(exported.contains(family) || exported.contains(name), "\(file): \(name) is not exported")
            }
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.dashboard))) as? [String: Any]
        #expect((json?["panels"] as? [Any])?.count == 14)
    }
}
