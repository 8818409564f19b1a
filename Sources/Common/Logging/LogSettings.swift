import Logging

/// The logging settings a process reads from its environment (docs/logging.md "Environment"). Only
/// these variables influence the proxy: `FLUXGATE_LOG`, `FLUXGATE_LOG_STYLE`,
/// `FLUXGATE_LOG_FORMAT`.
public struct LogSettings: Sendable, Equatable {
    public enum Format: String, Sendable { case text, json }

    public var level: Logger.Level
    public var colour: Bool
    public var format: Format
    /// A problem with the environment worth one warning at start (an unknown level name, say).
    public var problems: [String]

    public init(level: Logger.Level = .trace, colour: Bool = false, format: Format = .text, problems: [String] = []) {
        self.level = level
        self.colour = colour
        self.format = format
        self.problems = problems
    }

    /// Defaults: level `trace` (request lines on), no colour, text.
    public init(environment: [String: String]) {
        self.init()
        if let raw = environment["FLUXGATE_LOG"], !raw.isEmpty {
            if let parsed = Self.parseLevel(raw) {
                level = parsed
            } else {
                problems.append("FLUXGATE_LOG=\(raw) is not one of trace, debug, info, warn, error; using trace")
            }
        }
        colour = environment["FLUXGATE_LOG_STYLE"] == "always"
        if let raw = environment["FLUXGATE_LOG_FORMAT"], !raw.isEmpty {
            if let parsed = Format(rawValue: raw.lowercased()) {
                format = parsed
            } else {
                problems.append("FLUXGATE_LOG_FORMAT=\(raw) is not one of text, json; using text")
            }
        }
    }

    /// `trace`, `debug`, `info`, `warn` (or `warning`), `error`, `off`, case-insensitive, as
    /// Fluxgate's env filter accepts them.
    static func parseLevel(_ raw: String) -> Logger.Level? {
        switch raw.trimmingCharacters(in: " \t").lowercased() {
        case "trace": return .trace
        case "debug": return .debug
        case "info": return .info
        case "warn", "warning": return .warning
        case "error": return .error
        case "off", "none": return .critical
        default: return nil
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}
