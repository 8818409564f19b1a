import Common

/// One problem (or warning) found in a configuration file, with where it is.
/// `message` never contains a secret value: rules that involve a key name it by index and id.
public struct ConfigDiagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable { case error, warning }

    public var severity: Severity
    /// Stable identifier of the rule, e.g. `request_path.not_absolute` (documented in docs/configuration.md).
    public var code: String
    /// The file the problem is in, as given on the command line.
    public var file: String
    /// 1-based line and column of the offending node (0 when there is no node, e.g. an unreadable file).
    public var line: Int
    public var column: Int
    /// YAML-path-like location, e.g. `upstreams.openai.request_path` or `api_keys.static[1].key`.
    public var path: String
    public var message: String

    public init(
        severity: Severity = .error, code: String, file: String, line: Int, column: Int,
        path: String, message: String
    ) {
        self.severity = severity
        self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `fluxgate.yaml:12:19: error: upstreams.openai.request_path: must start with "/" [request_path.not_absolute]`
    public var description: String {
        let position = line > 0 ? "\(file):\(line):\(column)" : file
        let location = path.isEmpty ? "" : "\(path): "
        return "\(position): \(severity.rawValue): \(location)\(message) [\(code)]"
    }
}

/// What loading a file produced: a configuration when there was no error, and every diagnostic.
public struct ConfigLoadResult: Sendable {
    public var configuration: Configuration?
    public var diagnostics: [ConfigDiagnostic]

    public init(configuration: Configuration?, diagnostics: [ConfigDiagnostic]) {
        self.configuration = configuration
        self.diagnostics = diagnostics
    }

    public var errors: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var warnings: [ConfigDiagnostic] { diagnostics.filter { $0.severity == .warning } }
}
