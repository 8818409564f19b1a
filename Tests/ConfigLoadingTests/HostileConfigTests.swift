import Foundation
import Testing
@testable import ConfigLoading
import Common

// Hostile and broken inputs: each must come back as exactly one clear error, well under a second,
// without crashing or hanging (the master loads files on reload while it keeps serving).

private func expectFastError(
    _ code: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () -> ConfigLoadResult
) {
    var result: ConfigLoadResult?
    let elapsed = ContinuousClock().measure { result = body() }
    #expect(elapsed < .seconds(1), "took \(elapsed)", sourceLocation: sourceLocation)
    #expect(result?.configuration == nil, sourceLocation: sourceLocation)
    #expect(
        result?.errors.map(\.code) == [code], "\(result?.diagnostics.map(\.description) ?? [])",
        sourceLocation: sourceLocation)
}

private func bytes(_ text: String) -> ConfigLoadResult { load(text) }

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("fluxgate-\(UUID().uuidString)-\(name)").path
}

@Test func emptyAndCommentOnlyFiles() {
    expectFastError("file.empty") { ConfigLoader.load(bytes: [], file: "e.yaml") }
    expectFastError("file.empty") { bytes("# nothing here\n\n   # still nothing\n") }
}

@Test func binaryGarbage() {
    var state: UInt32 = 0x1234_5678
    let garbage = (0..<65_536).map { _ -> UInt8 in
        state = state &* 1_664_525 &+ 1_013_904_223  // a fixed LCG: the same bytes on every run
        return UInt8(truncatingIfNeeded: state >> 24)
    }
    expectFastError("yaml.syntax") { ConfigLoader.load(bytes: garbage, file: "g.bin") }
    expectFastError("yaml.syntax") { ConfigLoader.load(bytes: Array("version: 1\n\u{0}\u{1}\n".utf8), file: "nul") }
}

@Test func invalidUTF8() {
    let text = Array("version: 1\nserver:\n  bind_address: ".utf8) + [0xFF, 0xFE, 0x80] + Array("\n".utf8)
    var result: ConfigLoadResult?
    expectFastError("yaml.syntax") {
        result = ConfigLoader.load(bytes: text, file: "u.yaml")
        return result!
    }
    #expect(result?.errors.first?.line == 3)
}

@Test func fiftyMegabyteFileIsRefusedBeforeReading() throws {
    let path = temporaryPath("big.yaml")
    defer { try? FileManager.default.removeItem(atPath: path) }
    #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: UInt8(ascii: "#"), count: 50_000_000)))
    expectFastError("file.too_large") { ConfigLoader.load(path: path) }
    expectFastError("file.too_large") { ConfigLoader.load(bytes: [UInt8](repeating: 0x23, count: 5_000_000), file: "m") }
}

@Test func deepNestingStopsEarly() {
    let flow = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
    expectFastError("yaml.too_deep") { bytes(flow) }
    expectFastError("yaml.too_deep") { bytes(String(repeating: "{a: ", count: 10_000)) }
    let block = String(repeating: "- ", count: 10_000) + "x\n"
    expectFastError("yaml.too_deep") { bytes(block) }
    var indented = ""
    for depth in 0..<2_000 { indented += String(repeating: " ", count: depth) + "a:\n" }
    expectFastError("yaml.too_deep") { bytes(indented) }
}

@Test func billionLaughs() {
    var text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
    for (previous, name) in zip(names, names.dropFirst()) {
        text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]\n"
    }
    expectFastError("yaml.alias_limit") { bytes(text) }
    expectFastError("yaml.undefined_alias") { bytes("a: &a [*a]\n") }
}

@Test func tabsInIndentation() {
    expectFastError("yaml.syntax") { bytes("version: 1\nupstreams:\n\topenai:\n\t\ttarget_url: http://h\n") }
}

@Test func unreadableFilesNameTheOSReason() throws {
    let missing = ConfigLoader.load(path: "/nonexistent/fluxgate.yaml")
    #expect(missing.errors.map(\.code) == ["file.unreadable"])
    #expect(missing.errors.first?.message.contains("No such file or directory") == true)
    #expect(missing.errors.first?.line == 0)
    #expect(missing.errors.first?.file == "/nonexistent/fluxgate.yaml")
    expectFastError("file.unreadable") { ConfigLoader.load(path: FileManager.default.temporaryDirectory.path) }
    expectFastError("file.unreadable") { ConfigLoader.load(path: "/dev/zero") }
    // A FIFO nobody writes to: opening it for reading would block forever without O_NONBLOCK.
    let fifo = temporaryPath("fifo")
    #expect(mkfifo(fifo, 0o600) == 0)
    defer { unlink(fifo) }
    expectFastError("file.unreadable") { ConfigLoader.load(path: fifo) }
}

@Test func aLargeValidFileLoadsQuickly() throws {
    let comment = "# " + String(repeating: "c", count: 1_000) + "\n"
    let text = String(repeating: comment, count: 3_000) + minimalYAML  // about 3 MB
    let path = temporaryPath("large.yaml")
    defer { try? FileManager.default.removeItem(atPath: path) }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    var result: ConfigLoadResult?
    let elapsed = ContinuousClock().measure { result = ConfigLoader.load(path: path) }
    #expect(elapsed < .seconds(1))
    #expect(result?.diagnostics.isEmpty == true)
    #expect(result?.configuration?.upstreams.entries.count == 1)
}
