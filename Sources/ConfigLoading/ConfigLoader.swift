import Common

/// Loads and validates a configuration file: the one code path shared by start-up, reload and
/// `--check-config` (docs/configuration.md "Validation"). It never throws, never crashes and never
/// hangs: every problem, including a missing file or hostile YAML, comes back as a diagnostic with
/// a position.
public enum ConfigLoader {
    /// Limits that bound the work done on any input (docs/configuration.md, "Limits").
    public enum Limits {
        /// Larger files are refused before they are read.
        public static let maxFileBytes = 4 * 1024 * 1024
        /// Mappings and sequences nested deeper than this are refused while parsing.
        public static let maxNestingDepth = 64
        /// Nodes produced by expanding aliases, summed over all aliases ("billion laughs").
        public static let maxAliasExpansion = 100_000
    }

    /// Reads and validates a file. Never throws, never crashes, never hangs.
    public static func load(path: String) -> ConfigLoadResult {
        switch ConfigFileReader.read(path: path, limit: Limits.maxFileBytes) {
        case .success(let bytes):
            return load(bytes: bytes, file: path)
        case .failure(let failure):
            let (code, message): (String, String)
            switch failure {
            case .unreadable(let reason):
                (code, message) = ("file.unreadable", "cannot read the configuration file: \(reason)")
            case .notRegularFile:
                (code, message) = ("file.unreadable", "cannot read the configuration file: not a regular file")
            case .tooLarge(let limit):
                (code, message) = ("file.too_large", "the configuration file is larger than the limit of \(limit) bytes")
            }
            return ConfigLoadResult(
                configuration: nil,
                diagnostics: [
                    ConfigDiagnostic(code: code, file: path, line: 0, column: 0, path: "", message: message)
                ])
        }
    }

    /// Same, for bytes already in memory (`file` is the name used in diagnostics).
    public static func load(bytes: [UInt8], file: String) -> ConfigLoadResult {
        guard bytes.count <= Limits.maxFileBytes else {
            return ConfigLoadResult(
                configuration: nil,
                diagnostics: [
                    ConfigDiagnostic(
                        code: "file.too_large", file: file, line: 0, column: 0, path: "",
                        message: "the configuration file is larger than the limit of \(Limits.maxFileBytes) bytes")
                ])
        }
        var reader = YAMLReader(file: file)
        reader.limits = .init(maxDepth: Limits.maxNestingDepth, aliasBudget: Limits.maxAliasExpansion)
        let output = reader.read(bytes)
        var diagnostics = output.diagnostics
        var configuration: Configuration?
        if let root = output.root {
            var decoder = ConfigDecoder(file: file)
            configuration = decoder.decode(root)
            diagnostics += decoder.diagnostics
        }
        // File order reads best; problems without a position (line 0) come first.
        diagnostics = diagnostics.enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
        let hasErrors = diagnostics.contains { $0.severity == .error }
        return ConfigLoadResult(configuration: hasErrors ? nil : configuration, diagnostics: diagnostics)
    }
}
