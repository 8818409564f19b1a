import Foundation

/// A throwaway PKI made with the `openssl` command at test time: a CA; a server certificate for
/// localhost and 127.0.0.1; an expired one; one for another host; a second valid one (rotation);
/// and a certificate from an unrelated CA. EC P-256 keys: quick to make.
public final class TestCertificates: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public var path: String { directory.path }
    public var caFile: String { path + "/ca.pem" }

    /// `name`.pem / `name`.key in `path`.
    public func certificate(_ name: String) -> String { path + "/\(name).pem" }
    public func key(_ name: String) -> String { path + "/\(name).key" }

    public enum Failure: Error, CustomStringConvertible {
        case openssl(arguments: [String], stderr: String)
        public var description: String {
            switch self {
            case .openssl(let arguments, let stderr): return "openssl \(arguments.joined(separator: " ")) failed: \(stderr)"
            }
        }
    }

    public static var opensslPath: String? { Tools.find("openssl") }

    public init() throws {
        directory = try TemporaryDirectory()
        try run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key("ca"), "-out", caFile, "-days", "3", "-subj", "/CN=fluxgate test CA",
        ])
        try run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key("otherca"), "-out", certificate("otherca"), "-days", "3", "-subj", "/CN=other CA",
        ])
        try issue("server", cn: "localhost", san: "DNS:localhost,IP:127.0.0.1", days: 3)
        try issue("rotated", cn: "localhost rotated", san: "DNS:localhost,IP:127.0.0.1", days: 3)
        // -days -1: notAfter one day before now (notBefore now), so "certificate has expired".
        try issue("expired", cn: "localhost", san: "DNS:localhost,IP:127.0.0.1", days: -1)
        try issue("wronghost", cn: "wrong.example", san: "DNS:wrong.example", days: 3)
    }

    private func issue(_ name: String, cn: String, san: String, days: Int) throws {
        let ext = try directory.write("\(name).ext", "subjectAltName=\(san)\n")
        try run([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key(name), "-out", path + "/\(name).csr", "-subj", "/CN=\(cn)",
        ])
        try run([
            "x509", "-req", "-in", path + "/\(name).csr", "-CA", caFile, "-CAkey", key("ca"),
            "-CAcreateserial", "-days", String(days), "-extfile", ext, "-out", certificate(name),
        ])
    }

    private func run(_ arguments: [String]) throws {
        let result = try ChildProcess.run(Self.opensslPath ?? "/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw Failure.openssl(arguments: arguments, stderr: result.stderr) }
    }

    /// SHA-256 fingerprint of a certificate file as `openssl x509 -fingerprint` prints it.
    public func fingerprint(_ name: String) throws -> String {
        let result = try ChildProcess.run(
            Self.opensslPath ?? "/usr/bin/openssl",
            ["x509", "-in", certificate(name), "-noout", "-fingerprint", "-sha256"])
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Locating external tools the tests drive (installed by .ci/install-deps).
public enum Tools {
    public static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
