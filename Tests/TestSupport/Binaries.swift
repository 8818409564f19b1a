import Foundation

/// Paths of the built executables: `swift test` builds them beside the test bundle.
public enum Binaries {
    public static var directory: String {
        // /proc/self/exe is the xctest runner inside .build/<triple>/debug (or release).
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }

    public static var fluxgate: String { directory + "/fluxgate" }
    public static var worker: String { directory + "/fluxgate-worker" }

    /// The package root (for examples/ and fixtures): the test process runs from there.
    public static var packageRoot: String { FileManager.default.currentDirectoryPath }
}

/// A scratch directory removed when the value goes away.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init() throws {
        let base = NSTemporaryDirectory() + "fluxgate-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        self.path = base
    }

    @discardableResult
    public func write(_ name: String, _ contents: String) throws -> String {
        let file = path + "/" + name
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
