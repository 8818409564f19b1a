import Common
import COpenSSL

// `server.tls` and `upstreams.<name>.tls_ca_file`: files named in the configuration are read and
// checked at load, and their contents travel in the `Configuration` (see `ServerTLS`).
// Messages name the key and the file path, never the file's contents.
extension ConfigDecoder {
    static let serverTLSKeys: Set<String> = ["certificate_file", "private_key_file"]
    /// A PEM bundle larger than this is refused before it is read (a CA bundle is ~200 KiB).
    static let maxPEMFileBytes = 1024 * 1024

    mutating func decodeServerTLS(_ node: YAMLNode, _ path: String) -> Configuration.ServerTLS? {
        guard let entries = entries(node, path, nullIsEmpty: false) else { return nil }
        warnUnknown(entries, known: Self.serverTLSKeys, path)
        let certificatePath = Self.join(path, "certificate_file")
        let keyPath = Self.join(path, "private_key_file")
        var certificate: (file: String, bytes: [UInt8])?
        if let value = required("certificate_file", entries, in: node, path),
            let file = readFile(value, certificatePath)
        {
            switch PEMCheck.certificateCount(file.bytes) {
            case .success: certificate = file
            case .failure(let problem):
                error(
                    "certificate_file.invalid", value, certificatePath,
                    "\(Self.quoted(file.file)) is not a PEM certificate chain: \(Self.describe(problem))")
            }
        }
        var key: (file: String, bytes: [UInt8])?
        if let value = required("private_key_file", entries, in: node, path),
            let file = readFile(value, keyPath)
        {
            if let parsed = PEMCheck.readPrivateKey(file.bytes) {
                EVP_PKEY_free(parsed)
                key = file
                if let certificate, case .failure = PEMCheck.checkKey(file.bytes, matches: certificate.bytes) {
                    error(
                        "private_key_file.mismatch", value, keyPath,
                        "the private key in \(Self.quoted(file.file)) does not belong to the certificate in \(Self.quoted(certificate.file))"
                    )
                    key = nil
                }
            } else {
                error(
                    "private_key_file.invalid", value, keyPath,
                    "\(Self.quoted(file.file)) does not contain an unencrypted PEM private key")
            }
        }
        guard let certificate, let key else { return nil }
        return Configuration.ServerTLS(
            certificateFile: certificate.file, certificateChainPEM: String(decoding: certificate.bytes, as: UTF8.self),
            privateKeyFile: key.file, privateKeyPEM: Secret(String(decoding: key.bytes, as: UTF8.self)))
    }

    mutating func decodeTrustedCA(_ node: YAMLNode, _ path: String) -> Configuration.TrustedCA? {
        guard let file = readFile(node, path) else { return nil }
        switch PEMCheck.certificateCount(file.bytes) {
        case .success:
            return Configuration.TrustedCA(file: file.file, pem: String(decoding: file.bytes, as: UTF8.self))
        case .failure(let problem):
            error(
                "tls_ca_file.invalid", node, path,
                "\(Self.quoted(file.file)) is not a PEM certificate bundle: \(Self.describe(problem))")
            return nil
        }
    }

    /// A file named by a string value: a relative name is relative to the configuration file's
    /// directory (so a configuration and its certificates can move together).
    private mutating func readFile(_ node: YAMLNode, _ path: String) -> (file: String, bytes: [UInt8])? {
        let key = path.split(separator: ".").last.map(String.init) ?? path
        guard let raw = string(node, path) else { return nil }
        let name = raw.trimmingWhitespace
        guard !name.isEmpty else {
            error("\(key).blank", node, path, "must not be blank")
            return nil
        }
        let resolved = Self.resolve(name, relativeTo: file)
        switch ConfigFileReader.read(path: resolved, limit: Self.maxPEMFileBytes) {
        case .success(let bytes):
            return (name, bytes)
        case .failure(.unreadable(let reason)):
            error("\(key).unreadable", node, path, "cannot read \(Self.quoted(resolved)): \(reason)")
        case .failure(.notRegularFile):
            error("\(key).unreadable", node, path, "cannot read \(Self.quoted(resolved)): not a regular file")
        case .failure(.tooLarge(let limit)):
            error("\(key).unreadable", node, path, "\(Self.quoted(resolved)) is larger than the limit of \(limit) bytes")
        }
        return nil
    }

    static func resolve(_ name: String, relativeTo configFile: String) -> String {
        guard !name.hasPrefix("/"), let slash = configFile.lastIndex(of: "/") else { return name }
        return String(configFile[...slash]) + name
    }

    private static func describe(_ problem: PEMCheck.Problem) -> String {
        switch problem {
        case .noCertificate(let reason), .noPrivateKey(let reason): return reason
        case .keyMismatch: return "key mismatch"
        }
    }
}
