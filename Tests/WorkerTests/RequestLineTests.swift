#if canImport(Glibc)
import Glibc
#endif
import Common
import Logging
import Testing
@testable import FluxgateWorker

/// The request line written directly (`RequestLogRecord.emit(to: RequestLineWriter)`, what the
/// worker does) is byte for byte the line `FluxgateLogHandler` prints for the same record given
/// as metadata, in every format. Both go through a pipe, as to the journal.
@Suite struct RequestLineTests {
    static let records: [RequestLogRecord] = [
        RequestLogRecord(
            clientIP: "127.0.0.1", method: "POST", requestURL: "/openai/v1/chat/completions",
            requestBodyLength: 580, apiKeyID: "bench", targetURL: "http://127.0.0.1:9/v1/chat/completions",
            upstream: "openai", durationMs: 12, status: 200, responseBodyLength: 13_405),
        // Absent fields are left out; a proxy-made answer has no upstream.
        RequestLogRecord(
            clientIP: "::1", method: "GET", requestURL: "/nowhere", durationMs: 0, status: 404,
            responseBodyLength: 0),
        // Credentials in the query are redacted; quotes, spaces, backslashes and control
        // characters force quoting (text) or escaping (JSON); non-ASCII passes through.
        RequestLogRecord(
            clientIP: "10.0.0.1", method: "GET", requestURL: "/a?key=sk-secret&q=\"x y\"\\",
            apiKeyID: "équipe", targetURL: "https://h/b?sig=abc&t=\u{7}", upstream: "up",
            durationMs: 1_234_567, status: 502, responseBodyLength: 0),
        RequestLogRecord(
            clientIP: "127.0.0.1", method: "GET", requestURL: "/" + String(repeating: "p", count: 3000),
            status: 431),
        RequestLogRecord(),
    ]

    @Test(arguments: [(LogSettings.Format.text, false), (.text, true), (.json, false)])
    func directLineEqualsTheHandlersLine(format: LogSettings.Format, colour: Bool) throws {
        try Self.throughPipe(format: format, colour: colour) { handler, emitBoth in
            let logger = Logger(label: "test") { _ in handler }
            for record in Self.records {
                let lines = try emitBoth {
                    record.emit(to: logger)
                    record.emit(to: handler.requestLineWriter)
                }
                #expect(!lines[1].contains("sk-secret") && !lines[1].contains("sig=abc"))
            }
        }
    }

    /// A handler printing to a pipe, and a function that runs two writes of a line and checks
    /// both lines came out alike (but for the timestamp); it returns them.
    static func throughPipe(
        format: LogSettings.Format, colour: Bool,
        _ body: (FluxgateLogHandler, (() -> Void) throws -> [String]) throws -> Void
    ) throws {
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let handler = FluxgateLogHandler(settings: LogSettings(level: .trace, colour: colour, format: format), fd: fds[1])
        try body(handler) { writeTwice in
            writeTwice()
            let lines = try Self.readLines(fds[0], count: 2)
            #expect(lines.count == 2 && Self.withoutTimestamp(lines[0]) == Self.withoutTimestamp(lines[1]), "\(lines)")
            return lines.count == 2 ? lines : ["", ""]
        }
    }

    /// Numbers of every length print as the handler prints them from metadata (its
    /// `description`): the digits written two at a time from the last.
    @Test(arguments: [(LogSettings.Format.text, false), (.json, false)])
    func numbersOfEveryLengthPrintAsTheHandlersDo(format: LogSettings.Format, colour: Bool) throws {
        var values: [Int64] = [0, 1, -1, Int64.max, Int64.min, Int64.min + 1]
        var power: Int64 = 1
        for _ in 1...18 {
            power *= 10
            values += [power - 1, power, power + 1, -power, power / 2 + 7]
        }
        try Self.throughPipe(format: format, colour: colour) { handler, emitBoth in
            let logger = Logger(label: "test") { _ in handler }
            for value in values {
                let lines = try emitBoth {
                    logger.trace("Request processed", metadata: ["duration_ms": .stringConvertible(value)])
                    handler.requestLineWriter.write(level: .trace, message: "Request processed") { $0.add("duration_ms", value) }
                }
                #expect(lines[1].contains("\(value)"), "\(value)")
            }
        }
    }

    /// Values known to need no quoting (a made request id, a method) are copied unlooked-at,
    /// and print exactly as the same bytes looked at do.
    @Test(arguments: [(LogSettings.Format.text, false), (.text, true), (.json, false)])
    func bareValuesPrintAsTheSameTextDoes(format: LogSettings.Format, colour: Bool) throws {
        try Self.throughPipe(format: format, colour: colour) { handler, emitBoth in
            let writer = handler.requestLineWriter
            for value in ["POST", "M-SEARCH_X", "0123456789abcdef0123456789abcdef"] {
                let bytes = Array(value.utf8)
                _ = try emitBoth {
                    bytes.withUnsafeBytes { raw in
                        writer.write(level: .trace, message: "Request processed") { $0.add("method", bare: raw) }
                        writer.write(level: .trace, message: "Request processed") { $0.add("method", text: raw) }
                    }
                }
            }
        }
    }

    @Test func nothingIsWrittenBelowTheLevel() throws {
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let handler = FluxgateLogHandler(settings: LogSettings(level: .info), fd: fds[1])
        Self.records[0].emit(to: handler.requestLineWriter)
        var probe: UInt8 = 0
        #expect(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0)
        #expect(read(fds[0], &probe, 1) == -1)  // empty pipe: EAGAIN
    }

    /// Reads until `count` newlines have arrived.
    static func readLines(_ fd: CInt, count: Int) throws -> [String] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.filter({ $0 == UInt8(ascii: "\n") }).count < count {
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { break }
            bytes += buffer[..<n]
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The line with its RFC 3339 timestamp (27 bytes, wherever it is) replaced.
    static func withoutTimestamp(_ line: String) -> String {
        var bytes = Array(line.utf8)
        var i = 0
        while i + 27 <= bytes.count {
            let slice = bytes[i..<i + 27]
            if slice[i + 4] == UInt8(ascii: "-"), slice[i + 10] == UInt8(ascii: "T"), slice[i + 26] == UInt8(ascii: "Z") {
                bytes.replaceSubrange(i..<i + 27, with: Array("<timestamp>".utf8))
                break
            }
            i += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
