#if canImport(Glibc)
import Glibc
#endif
import Logging
import Testing
@testable import Common

@Suite struct LogFormatTests {
    let text = LogLineFormatter(colour: false, format: .text)

    @Test func requestLineFieldsComeInFluxgateOrderWhateverTheDictionarySays() {
        let metadata: Logger.Metadata = [
            "response_body_length": "12", "status": "200", "duration_ms": "3", "upstream": "openai",
            "target_url": "http://127.0.0.1:9/v1/models", "api_key": "pr", "request_body_length": "0",
            "request_url": "/openai/v1/models", "method": "GET", "client_ip": "127.0.0.1",
        ]
        let line = text.format(
            timestamp: "2026-11-22T03:09:25.123456Z", level: .trace,
            message: "Request processed", metadata: metadata)
        #expect(
            line == "2026-11-22T03:09:25.123456Z TRACE Request processed client_ip=127.0.0.1 method=GET "
                + "request_url=/openai/v1/models request_body_length=0 api_key=pr target_url=http://127.0.0.1:9/v1/models "
                + "upstream=openai duration_ms=3 status=200 response_body_length=12\n")
    }

    /// The request line writer decides "copy the value bare" eight bytes at a time: the same
    /// answer as `isBareByte` on each byte, for every byte value at every position.
    @Test func bareValueCheckMatchesTheByteRuleEverywhere() {
        for length in [1, 7, 8, 9, 16, 21] {
            for position in 0..<length {
                for b in UInt8.min...UInt8.max {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = b
                    let answer = bytes.withUnsafeBufferPointer { LogLineBuilder.allBare($0) }
                    #expect(answer == LogLineFormatter.isBareByte(b), "length \(length), byte \(b) at \(position)")
                }
            }
        }
    }

    @Test func levelsAreRightAlignedToFiveColumns() {
        let names = [Logger.Level.trace, .debug, .info, .warning, .error].map {
            text.format(timestamp: "T", level: $0, message: "m", metadata: [:])
        }
        #expect(names == ["T TRACE m\n", "T DEBUG m\n", "T  INFO m\n", "T  WARN m\n", "T ERROR m\n"])
    }

    @Test func quotedValuesAndAmbiguousStringsAreQuotedAndEscaped() {
        let line = text.format(
            timestamp: "T", level: .info, message: "Loaded configuration",
            metadata: [
                "path": .quoted("/etc/fluxgate/fluxgate.yaml"), "status": .quoted("applied"),
                "error": "two words\nand \"quotes\"",
            ])
        #expect(
            line == "T  INFO Loaded configuration error=\"two words\\nand \\\"quotes\\\"\" "
                + "path=\"/etc/fluxgate/fluxgate.yaml\" status=\"applied\"\n")
    }

    @Test func oneRecordIsAlwaysOneLineEvenWithNewlinesInTheMessageValues() {
        let line = text.format(timestamp: "T", level: .warning, message: "x", metadata: ["k": "a\nb\rc"])
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test func jsonFormatIsOneObjectPerLineWithNumbersAsNumbers() throws {
        let json = LogLineFormatter(colour: false, format: .json)
        let line = json.format(
            timestamp: "T", level: .trace, message: "Request processed",
            metadata: ["status": .stringConvertible(200), "method": "POST", "client_ip": "::1", "path": .quoted("a \"b\"")])
        #expect(
            line == "{\"timestamp\":\"T\",\"level\":\"TRACE\",\"message\":\"Request processed\","
                + "\"client_ip\":\"::1\",\"method\":\"POST\",\"status\":200,\"path\":\"a \\\"b\\\"\"}\n")
    }

    @Test func colourIsOnlyUsedWhenAskedFor() {
        #expect(LogSettings(environment: ["FLUXGATE_LOG_STYLE": "always"]).colour)
        #expect(!LogSettings(environment: ["FLUXGATE_LOG_STYLE": "never"]).colour)
        #expect(!LogSettings(environment: [:]).colour)
        let coloured = LogLineFormatter(colour: true, format: .text).format(timestamp: "T", level: .error, message: "m", metadata: [:])
        #expect(coloured.contains("\u{1B}[31mERROR"))
    }

    @Test func levelFilterComesFromFluxgateLogAndDefaultsToTrace() {
        #expect(LogSettings(environment: [:]).level == .trace)
        #expect(LogSettings(environment: ["FLUXGATE_LOG": "info"]).level == .info)
        #expect(LogSettings(environment: ["FLUXGATE_LOG": "WARN"]).level == .warning)
        #expect(LogSettings(environment: ["FLUXGATE_LOG": "error"]).level == .error)
        let bad = LogSettings(environment: ["FLUXGATE_LOG": "loud"])
        #expect(bad.level == .trace && bad.problems.count == 1)
        #expect(LogSettings(environment: ["FLUXGATE_LOG_FORMAT": "json"]).format == .json)
    }

    @Test func timestampIsRFC3339UTCWithMicroseconds() {
        let stamp = FluxgateLogHandler.timestamp()
        #expect(stamp.count == 27)
        #expect(stamp.hasSuffix("Z"))
        let pattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/
        #expect(stamp.wholeMatch(of: pattern) != nil)
    }

    /// The date and time to the second are cached per thread: across a change of second the
    /// stamp must follow the clock (checked against `strftime` of the same clock read around it).
    @Test func timestampFollowsTheClockAcrossSeconds() {
        func now() -> time_t {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            return now.tv_sec
        }
        func utc(_ seconds: time_t) -> String {
            var seconds = seconds
            var parts = tm()
            gmtime_r(&seconds, &parts)
            var text = [CChar](repeating: 0, count: 32)
            _ = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%S", &parts)
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        var seen = Set<String>()
        // A second boundary falls within 1.2 s; stamps are taken every 20 ms until two were seen.
        for _ in 0..<60 where seen.count < 2 {
            let before = now()
            let stamp = String(FluxgateLogHandler.timestamp().prefix(19))
            let after = now()
            #expect(stamp == utc(before) || stamp == utc(after), "\(stamp) is not \(utc(before)) or \(utc(after))")
            seen.insert(stamp)
            usleep(20_000)
        }
        #expect(seen.count == 2)
    }
}
