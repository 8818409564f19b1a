import Foundation
import Testing

/// docs/logging.md is the contract for every line the proxy logs: its "System messages" tables
/// list exactly the messages the sources log, at the level they log them, with the fields they
/// attach. This reads both and compares them both ways, so a new, renamed or removed message
/// (or field) fails here until the docs say the same.
@Suite struct DocumentedLogMessagesTests {
    /// One logged message: level as printed (`INFO`, `WARN` …), the text with every interpolation
    /// or `<placeholder>` written as `<>`, and field names.
    struct Message: Hashable, CustomStringConvertible {
        var level: String
        var text: String
        var description: String { "\(level) \(text)" }
    }

    /// The repository, found from this file's own path (Tests/CommonTests/<this file>).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Log calls whose message is not a literal (as the call begins, up to its closing
    /// parenthesis), each with the docs row it stands for. A new call of this kind fails the test
    /// until it is added here (and documented).
    static let dynamicCalls: [(file: String, call: String, documented: Message?)] = [
        // Configuration diagnostics, at start (errors and warnings) and at reload (warnings).
        (
            "Sources/master/CLI/FluxgateCommand.swift", #"logger.warning("\(warning)""#,
            Message(level: "WARN", text: "<>:<>:<>: warning: <>: <> [<>]")
        ),
        (
            "Sources/master/CLI/FluxgateCommand.swift", #"logger.error("\(error)""#,
            Message(level: "ERROR", text: "<>:<>:<>: error: <>: <> [<>]")
        ),
        (
            "Sources/master/Supervisor/SupervisorState+Reload.swift", "log(.warning, warning.description",
            Message(level: "WARN", text: "<>:<>:<>: warning: <>: <> [<>]")
        ),
        (
            "Sources/master/Supervisor/SupervisorState+Reload.swift", "log(.warning, problem",
            Message(level: "WARN", text: "<>:<>:<>: error: <>: <> [<>]")
        ),
        // The master's shell writing the state machine's LogEntry values (their literals are the
        // `log(.level, "…")` calls found in SupervisorState).
        ("Sources/master/Supervisor/Master.swift", #"logger.log(level: level, "\(entry.message)""#, nil),
        // The environment warnings of LogSettings (their literals are `problems.append("…")`).
        ("Sources/Common/Logging/FluxgateLogHandler.swift", #"logger.warning("\(problem)""#, nil),
        // The request line through swift-log (the worker writes it with RequestLineWriter, found
        // as `write(level: .trace, message: "Request processed")`).
        ("Sources/worker/Worker/RequestLogRecord.swift", "logger.trace(Self.message", nil),
    ]

    // MARK: - The sources

    static let levels = [
        "trace": "TRACE", "debug": "DEBUG", "info": "INFO", "notice": "INFO",
        "warning": "WARN", "error": "ERROR", "critical": "ERROR",
    ]

    /// Every log call in Sources: `logger.<level>(…)`, the supervisor's `log(.<level>, …)`,
    /// `RequestLineWriter.write(level:message:)` and LogSettings' `problems.append(…)` (logged at
    /// WARN by FluxgateLogHandler.bootstrap).
    static func sourceMessages() throws -> (fields: [Message: Set<String>], unlisted: [String]) {
        var fields: [Message: Set<String>] = [:]
        var unlisted: [String] = []
        let sources = root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        #expect(files.count > 50, "found the sources at \(sources.path)")
        let calls: [(Regex<(Substring, Substring)>, fixedLevel: String?, method: Bool)] = [
            (/\blogger\.(trace|debug|info|notice|warning|error|critical)\(/, nil, false),
            (/\blog\(\s*\.(debug|info|warning|error),\s*/, nil, true),
            (/\.write\(\s*level: \.(trace|debug|info|warning|error),\s*message:\s*/, nil, false),
            (/\bproblems\.append\(()/, "WARN", false),
        ]
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            let relative = String(file.path.dropFirst(root.path.count + 1))
            for (pattern, fixedLevel, method) in calls {
                // Simple word boundaries: under Unicode's, `state.logger` is one word.
                for match in text.matches(of: pattern.wordBoundaryKind(.simple)) {
                    // The supervisor's `log(.level, …)` is called bare; `x.log(.…)` is something else.
                    if method, match.range.lowerBound > text.startIndex,
                        text[text.index(before: match.range.lowerBound)] == "."
                    {
                        continue
                    }
                    let level = fixedLevel ?? levels[String(match.output.1)]!
                    let rest = text[match.range.upperBound...]
                    let arguments = Self.balanced(rest)
                    guard let literal = Self.leadingLiteral(arguments), literal != "<>" else {
                        let snippet = String(text[match.range.lowerBound..<arguments.endIndex])
                        if !dynamicCalls.contains(where: { $0.file == relative && snippet.hasPrefix($0.call) }) {
                            unlisted.append("\(relative): \(snippet)")
                        }
                        continue
                    }
                    fields[Message(level: level, text: literal), default: []].formUnion(Self.fieldNames(in: arguments))
                }
            }
        }
        for call in dynamicCalls {
            let text = try String(contentsOf: root.appendingPathComponent(call.file), encoding: .utf8)
            #expect(text.contains(call.call), "dynamicCalls lists \(call.call) in \(call.file), which no longer has it")
            if let message = call.documented { fields[message, default: []].formUnion([]) }
        }
        return (fields, unlisted)
    }

    /// The call's arguments: everything up to the parenthesis that closes the call, string
    /// literals (and their interpolations) skipped as such.
    static func balanced(_ text: Substring) -> Substring {
        var depth = 1
        var i = text.startIndex
        while i < text.endIndex {
            switch text[i] {
            case "\"": i = endOfLiteral(text, from: i); continue
            case "(", "[": depth += 1
            case ")", "]":
                depth -= 1
                if depth == 0 { return text[text.startIndex..<i] }
            default: break
            }
            i = text.index(after: i)
        }
        return text
    }

    /// The index after the string literal that starts at `start` (a `"`), interpolations included.
    static func endOfLiteral(_ text: Substring, from start: Substring.Index) -> Substring.Index {
        var i = text.index(after: start)
        while i < text.endIndex {
            if text[i] == "\\" {
                let next = text.index(after: i)
                if next < text.endIndex, text[next] == "(" {
                    i = balanced(text[text.index(after: next)...]).endIndex
                } else {
                    i = next
                }
            } else if text[i] == "\"" {
                return text.index(after: i)
            }
            i = text.index(after: i)
        }
        return i
    }

    /// The first argument when it is a string literal, each interpolation as `<>`.
    static func leadingLiteral(_ arguments: Substring) -> String? {
        // A call the formatter wrapped starts its arguments on the next line.
        let arguments = arguments.drop(while: \.isWhitespace)
        guard arguments.first == "\"" else { return nil }
        let end = endOfLiteral(arguments, from: arguments.startIndex)
        let body = arguments[arguments.index(after: arguments.startIndex)..<arguments.index(before: end)]
        var out = ""
        var i = body.startIndex
        while i < body.endIndex {
            if body[i] == "\\" {
                let next = body.index(after: i)
                if next < body.endIndex, body[next] == "(" {
                    out += "<>"
                    i = balanced(body[body.index(after: next)...]).endIndex
                    i = body.index(after: i)
                    continue
                }
                out.append(body[next])
                i = body.index(after: next)
                continue
            }
            out.append(body[i])
            i = body.index(after: i)
        }
        return out
    }

    /// Metadata keys: `["key": …]` dictionaries, `("key", …)` pairs, and the supervisor's
    /// `workerMetadata(worker)` (slot, pid, generation).
    static func fieldNames(in arguments: Substring) -> Set<String> {
        var names = Set(arguments.matches(of: /"([a-z_]+)"\s*:/).map { String($0.output.1) })
        names.formUnion(arguments.matches(of: /\(\s*"([a-z_]+)"\s*,/).map { String($0.output.1) })
        if arguments.contains("workerMetadata(") { names.formUnion(["slot", "pid", "generation"]) }
        return names
    }

    // MARK: - The docs

    /// The rows of docs/logging.md's "System messages" tables: `| LEVEL | `message fields` | … |`.
    /// The message ends where the first ` key=` (or ` [key=`, a field some lines lack) begins.
    static func documentedMessages() throws -> [Message: Set<String>] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/logging.md"), encoding: .utf8)
        let start = try #require(text.range(of: "\n## System messages\n"))
        let section = text[start.upperBound...]
        let end = section.range(of: "\n## ")?.lowerBound ?? section.endIndex
        var rows: [Message: Set<String>] = [:]
        for line in section[..<end].split(separator: "\n") {
            guard let row = line.firstMatch(of: /^\| (TRACE|DEBUG|INFO|WARN|ERROR) \| `([^`]+)` \|/) else { continue }
            let entry = row.output.2
            let fieldStart = entry.firstRange(of: /\ \[?[a-z_]+=/)?.lowerBound ?? entry.endIndex
            let message = entry[..<fieldStart].replacing(/<[^>]*>/, with: "<>")
            let names = entry[fieldStart...].matches(of: /([a-z_]+)=/).map { String($0.output.1) }
            let key = Message(level: String(row.output.1), text: String(message))
            #expect(rows[key] == nil, "\(key) is documented twice")
            rows[key] = Set(names)
        }
        return rows
    }

    // MARK: - The checks

    @Test func everyLoggedMessageIsDocumentedAndEveryDocumentedOneIsLogged() throws {
        let (logged, unlisted) = try Self.sourceMessages()
        #expect(
            unlisted.isEmpty, "log calls whose message is not a literal: list them in dynamicCalls\n\(unlisted.joined(separator: "\n"))")
        let documented = try Self.documentedMessages()
        let undocumented = Set(logged.keys).subtracting(documented.keys)
        let stale = Set(documented.keys).subtracting(logged.keys)
        #expect(
            undocumented.isEmpty, "logged but not in docs/logging.md:\n\(undocumented.map(\.description).sorted().joined(separator: "\n"))")
        #expect(stale.isEmpty, "in docs/logging.md but never logged:\n\(stale.map(\.description).sorted().joined(separator: "\n"))")
        #expect(logged.count > 40, "the extraction finds the sources' messages (\(logged.count))")
    }

    @Test func everyMessagesFieldsAreTheDocumentedOnes() throws {
        let logged = try Self.sourceMessages().fields
        let documented = try Self.documentedMessages()
        for (message, names) in logged {
            guard let listed = documented[message] else { continue }
            #expect(names == listed, "\(message): the code attaches \(names.sorted()), the docs list \(listed.sorted())")
        }
    }
}
