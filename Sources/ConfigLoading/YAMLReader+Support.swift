import Common
import CYAML

// Conversions from libyaml's C values, and the translation of its errors into diagnostics.
extension YAMLReader {
    func diagnostic(_ code: String, _ mark: YAMLMark, _ message: String) -> ConfigDiagnostic {
        ConfigDiagnostic(code: code, file: file, line: mark.line, column: mark.column, path: "", message: message)
    }

    /// One error for libyaml's first problem, at its position. libyaml's problem texts describe
    /// the syntax ("found character that cannot start any token"), never quote the content, so a
    /// secret on a broken line does not leak through them.
    func syntaxError(_ parser: yaml_parser_t, _ bytes: [UInt8]) -> ConfigDiagnostic {
        let problem = Self.string(parser.problem) ?? "invalid YAML"
        var mark: YAMLMark
        if parser.error == YAML_READER_ERROR {
            // Reader errors (invalid UTF-8, control characters) set problem_offset, not problem_mark.
            mark = Self.position(ofByte: Int(parser.problem_offset), in: bytes)
        } else {
            mark = YAMLMark(line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1)
        }
        var message = problem
        if let context = Self.string(parser.context) {
            message = "\(context) (line \(parser.context_mark.line + 1)): \(problem)"
        }
        if parser.error == YAML_SCANNER_ERROR || parser.error == YAML_PARSER_ERROR,
            Self.hasTabInIndentation(lineNumber: mark.line, in: bytes)
        {
            message += "; tabs are not allowed for indentation in YAML; use spaces"
        }
        if parser.error == YAML_READER_ERROR { mark.line = max(mark.line, 1) }
        return ConfigDiagnostic(
            code: "yaml.syntax", file: file, line: mark.line, column: mark.column,
            path: "", message: message)
    }

    /// 1-based line and column (in bytes) of a byte offset.
    static func position(ofByte offset: Int, in bytes: [UInt8]) -> YAMLMark {
        let end = min(max(offset, 0), bytes.count)
        var line = 1, lineStart = 0
        for i in 0..<end where bytes[i] == UInt8(ascii: "\n") {
            line += 1
            lineStart = i + 1
        }
        return YAMLMark(line: line, column: end - lineStart + 1)
    }

    /// Whether the given 1-based line starts with whitespace that contains a tab. libyaml reports a
    /// tab-indented line as "found character that cannot start any token", which does not help.
    static func hasTabInIndentation(lineNumber: Int, in bytes: [UInt8]) -> Bool {
        var line = 1
        var index = 0
        while line < lineNumber, index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") { line += 1 }
            index += 1
        }
        // The problem may be reported at the line before the tab-indented one (end of a key).
        for candidate in [index, nextLineStart(after: index, in: bytes)] {
            var i = candidate
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") {
                if bytes[i] == UInt8(ascii: "\t") { return true }
                i += 1
            }
        }
        return false
    }

    private static func nextLineStart(after index: Int, in bytes: [UInt8]) -> Int {
        var i = index
        while i < bytes.count, bytes[i] != UInt8(ascii: "\n") { i += 1 }
        return min(i + 1, bytes.count)
    }

    static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, _ length: Int) -> String? {
        guard let pointer else { return nil }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    static func string(_ pointer: UnsafePointer<CChar>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    static func style(_ style: yaml_scalar_style_t) -> YAMLScalar.Style {
        switch style {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: return .singleQuoted
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: return .doubleQuoted
        case YAML_LITERAL_SCALAR_STYLE: return .literal
        case YAML_FOLDED_SCALAR_STYLE: return .folded
        default: return .plain
        }
    }
}
