import Logging

/// Renders one log event as one line, in Fluxgate's text format or as a JSON object:
///
///     2026-11-22T03:09:25.123456Z  INFO Loaded configuration path=/etc/fluxgate/fluxgate.yaml status="applied"
///
/// Metadata keys of the request line come first in Fluxgate's order; any other keys follow sorted,
/// so a line reads the same on every run.
public struct LogLineFormatter: Sendable {
    public var colour: Bool
    public var format: LogSettings.Format

    public init(colour: Bool = false, format: LogSettings.Format = .text) {
        self.colour = colour
        self.format = format
    }

    /// The request line's fields, in the order Fluxgate prints them
    /// (docs/logging.md "The request line").
    public static let requestFieldOrder = [
        "client_ip", "method", "request_url", "request_body_length", "api_key", "target_url",
        "upstream", "duration_ms", "status", "response_body_length",
        // fluxgate's own fields, after Fluxgate's (docs/logging.md).
        "error", "request_id", "upstream_request_id", "attempts", "model", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "usage",
    ]
    private static let requestFieldRank: [String: Int] = Dictionary(
        uniqueKeysWithValues: requestFieldOrder.enumerated().map { ($1, $0) })

    public func format(timestamp: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        let fields = Self.ordered(metadata)
        switch format {
        case .text: return text(timestamp: timestamp, level: level, message: message, fields: fields)
        case .json: return json(timestamp: timestamp, level: level, message: message, fields: fields)
        }
    }

    /// A request line (it has `client_ip`) lists its fields in Fluxgate's order; anything else
    /// sorts its keys, so `path=… status=…` reads as Fluxgate prints it.
    ///
    /// The request line is written once per request, so its fields are picked in order by one
    /// lookup each instead of sorting through the rank table (which hashed two keys per
    /// comparison: ~8% of a worker's CPU with request logging on).
    static func ordered(_ metadata: Logger.Metadata) -> [(String, Logger.MetadataValue)] {
        guard metadata["client_ip"] != nil else { return metadata.sorted { $0.key < $1.key } }
        var fields: [(String, Logger.MetadataValue)] = []
        fields.reserveCapacity(metadata.count)
        for key in requestFieldOrder {
            if let value = metadata[key] { fields.append((key, value)) }
        }
        if fields.count < metadata.count {
            fields += metadata.filter { requestFieldRank[$0.key] == nil }.sorted { $0.key < $1.key }
                .map { ($0.key, $0.value) }
        }
        return fields
    }

    /// `TRACE`, `DEBUG`, ` INFO`, ` WARN`, `ERROR`: right-aligned to 5 as Fluxgate prints them.
    static func levelName(_ level: Logger.Level) -> String { levelText(level).description }

    /// `levelName` as static bytes (the request line writer copies them without a `String`).
    static func levelText(_ level: Logger.Level) -> StaticString {
        switch level {
        case .trace: return "TRACE"
        case .debug: return "DEBUG"
        case .info, .notice: return "INFO"
        case .warning: return "WARN"
        case .error, .critical: return "ERROR"
        }
    }

    static func ansi(_ level: Logger.Level) -> String {
        switch level {
        case .trace: return "\u{1B}[35m"
        case .debug: return "\u{1B}[34m"
        case .info, .notice: return "\u{1B}[32m"
        case .warning: return "\u{1B}[33m"
        case .error, .critical: return "\u{1B}[31m"
        }
    }

    private func text(
        timestamp: String, level: Logger.Level, message: String,
        fields: [(String, Logger.MetadataValue)]
    ) -> String {
        let name = Self.levelName(level)
        let padded = name.utf8.count == 5 ? name : " " + name
        var line = ""
        line.reserveCapacity(Self.typicalLineBytes)
        if colour {
            line += "\u{1B}[2m\(timestamp)\u{1B}[0m \(Self.ansi(level))\(padded)\u{1B}[0m "
        } else {
            line += timestamp
            line += " "
            line += padded
            line += " "
        }
        line += message
        for (key, value) in fields {
            if colour {
                line += " \u{1B}[3m\(key)\u{1B}[0m="
            } else {
                line += " "
                line += key
                line += "="
            }
            line += Self.textValue(value)
        }
        line += "\n"
        return line
    }

    /// Plain tokens stay bare (`status=200`, `request_url=/v1/models`); a string that would be
    /// ambiguous (spaces, quotes, backslashes, control characters, empty) is quoted and escaped, so one
    /// line is always one record. `LogQuoted` values are always quoted (Fluxgate's `status="applied"`).
    static func textValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): return isBare(s) ? s : quoted(s)
        case .stringConvertible(let c):
            // A metatype comparison, not `as? LogQuoted`: the request line's numbers come through
            // here on every request, and a failing dynamic cast costs more than printing them.
            if let q = Self.asQuoted(c) { return quoted(q.value) }
            let s = c.description
            return isBare(s) ? s : quoted(s)
        case .array(let items): return "[" + items.map(textValue).joined(separator: ",") + "]"
        case .dictionary(let dict):
            return "{" + ordered(dict).map { "\($0)=\(textValue($1))" }.joined(separator: ",") + "}"
        }
    }

    /// Printable ASCII without spaces, quotes or backslashes reads back unambiguously (a reader
    /// splits fields on spaces and a field on its first `=`), so URLs with queries stay bare as
    /// Fluxgate prints them: `request_url=/v1/chat?stream=true`.
    static func isBare(_ s: String) -> Bool {
        // Bytes, not scalars: any non-ASCII scalar has UTF-8 bytes >= 0x80, which fail the test too.
        // Through the contiguous bytes: `utf8.allSatisfy` walks the view's indices (request
        // lines ask for every field).
        var s = s
        return s.withUTF8 { bytes in !bytes.isEmpty && bytes.allSatisfy(isBareByte) }
    }

    static func isBareByte(_ b: UInt8) -> Bool {
        b > 0x20 && b < 0x7F && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\")
    }

    /// Room for a request line with typical URLs, so building it does not regrow the string.
    static let typicalLineBytes = 384

    static func asQuoted(_ value: any CustomStringConvertible & Sendable) -> LogQuoted? {
        ObjectIdentifier(type(of: value)) == ObjectIdentifier(LogQuoted.self) ? (value as! LogQuoted) : nil
    }

    /// Quoted values use JSON's escapes, so one record is always one line and reads back with
    /// any JSON string parser.
    static func quoted(_ s: String) -> String { JSONText.quoted(s) }

    private func json(
        timestamp: String, level: Logger.Level, message: String,
        fields: [(String, Logger.MetadataValue)]
    ) -> String {
        var line = "{\"timestamp\":\(Self.jsonString(timestamp)),\"level\":\"\(Self.levelName(level))\""
        line += ",\"message\":\(Self.jsonString(message))"
        for (key, value) in fields where !["timestamp", "level", "message"].contains(key) {
            line += ",\(Self.jsonString(key)):\(Self.jsonValue(value))"
        }
        return line + "}\n"
    }

    static func jsonValue(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): return jsonString(s)
        case .stringConvertible(let c):
            if let q = asQuoted(c) { return jsonString(q.value) }
            switch c {
            case is Int, is Int64, is UInt64, is UInt32, is Int32, is UInt16, is UInt: return c.description
            case let d as Double where d.isFinite: return c.description
            case let b as Bool: return b ? "true" : "false"
            default: return jsonString(c.description)
            }
        case .array(let items): return "[" + items.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let dict):
            return "{" + ordered(dict).map { "\(jsonString($0)):\(jsonValue($1))" }.joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ s: String) -> String { JSONText.quoted(s) }
}

/// A metadata value that the text format always prints in quotes, as Fluxgate prints the string
/// literal of `status="applied"` (values it records with `Display`, such as paths and errors,
/// are bare unless they need quotes: those are plain `.string` metadata here).
public struct LogQuoted: CustomStringConvertible, Sendable {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { value }
}

extension Logger.MetadataValue {
    /// `key="value"` in the text format, whatever the value contains.
    public static func quoted(_ value: String) -> Logger.MetadataValue { .stringConvertible(LogQuoted(value)) }
}
