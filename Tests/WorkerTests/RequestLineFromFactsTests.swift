import NIOCore
import NIOHTTP1
import Testing
@testable import FluxgateWorker

/// The worker prints its request line from a request's facts (`RequestFacts.forEachLineField`,
/// through its own handler or, for a logger of a test's own, as metadata). Each variant's line
/// is compared with the record of strings a reader of docs/logging.md "The request line" expects
/// for it: the same fields, values and order.
@Suite struct RequestLineFromFactsTests {
    static func rendered(_ each: RequestLogRecord.Fields) -> [String] {
        var out: [String] = []
        each { key, value in
            switch value {
            case .string(let s): out.append("\(key)=\(s)")
            case .number(let n): out.append("\(key)=\(n)")
            case .text(let bytes), .bare(let bytes): out.append("\(key)=\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        return out
    }

    static func routedFacts(target: String) -> RequestFacts {
        let upstream = Fixtures.upstream("openai", "/openai", Fixtures.url(.https, "api.openai.com", path: "/v1"))
        let head = ForwardingHeaderTests.parsed(["host": "proxy"], target: target)
        let match = ForwardingHeaderTests.match(head, upstream)
        var facts = RequestFacts(startedAt: .uptimeNanoseconds(5_000_000))
        facts.method = .POST
        facts.requestTarget = head.targetBytes
        facts.route = match.route
        facts.match = match
        facts.keyID = "bench"
        facts.requestBodyBytes = 230
        facts.status = 200
        facts.responseBodyBytes = 580
        return facts
    }

    /// The line `routedFacts(target:)` makes, 14 ms after it started, as strings.
    static func expectedRecord(target: String) -> RequestLogRecord {
        RequestLogRecord(
            clientIP: "127.0.0.1", method: "POST", requestURL: target, requestBodyLength: 230, apiKeyID: "bench",
            targetURL: "https://api.openai.com/v1" + target.dropFirst("/openai".count), upstream: "openai",
            durationMs: 14, status: 200, responseBodyLength: 580, requestID: "0123456789abcdef0123456789abcdef")
    }

    /// What changes in the facts, and what that changes in the line.
    static let variants: [(String, @Sendable (inout RequestFacts) -> Void, @Sendable (inout RequestLogRecord) -> Void)] = [
        ("plain", { _ in }, { _ in }),
        (
            "ids, tries, error",
            {
                $0.requestID = "client-id.1"
                $0.upstreamRequestID = "req_abc"
                $0.attempts = 3
                $0.upstreamError = UpstreamErrorCause(layer: .connect, reason: "Connection refused")
            },
            {
                $0.requestID = "client-id.1"
                $0.upstreamRequestID = "req_abc"
                $0.attempts = 3
                $0.error = "connect: Connection refused"
            }
        ),
        (
            "usage",
            {
                $0.usage = UsageResult(model: "gpt-4o", inputTokens: 12, outputTokens: 34, cacheReadTokens: 5, status: .reported)
            },
            {
                $0.model = "gpt-4o"
                $0.inputTokens = 12
                $0.outputTokens = 34
                $0.cacheReadTokens = 5
                $0.usage = "reported"
            }
        ),
        (
            "the client's model, no counts",
            {
                $0.requestModel = "mock-json"
                $0.usage = UsageResult(status: .missing)
            },
            {
                $0.model = "mock-json"
                $0.usage = "missing"
            }
        ),
        (
            "not routed",
            {
                $0.route = nil
                $0.match = nil
                $0.keyID = nil
                $0.requestBodyBytes = nil
                $0.status = 401
            },
            {
                $0.targetURL = nil
                $0.upstream = nil
                $0.apiKeyID = nil
                $0.requestBodyLength = nil
                $0.status = 401
            }
        ),
    ]

    @Test(arguments: ["/openai/chat/completions", "/openai/x?key=sk-secret&q=1"], 0..<variants.count)
    func theLineFromTheFactsIsTheExpectedRecordsLine(target: String, variant: Int) {
        var facts = Self.routedFacts(target: target)
        var record = Self.expectedRecord(target: target)
        Self.variants[variant].1(&facts)
        Self.variants[variant].2(&record)
        if facts.requestID == nil { facts.requestID = "0123456789abcdef0123456789abcdef" }
        let ended = NIODeadline.uptimeNanoseconds(19_000_000)
        let fromFacts = Self.rendered { facts.forEachLineField(clientIP: "127.0.0.1", endedAt: ended, _: $0) }
        #expect(fromFacts == Self.rendered(record.forEachField), "\(Self.variants[variant].0)")
        #expect(fromFacts.contains("duration_ms=14"))
        #expect(!fromFacts.joined().contains("sk-secret"))
    }

    /// A URL longer than a line may carry is cut (docs/logging.md "Lines never interleave").
    @Test func aLongTargetIsCappedInTheLine() {
        var facts = Self.routedFacts(target: "/openai/" + String(repeating: "a", count: 8000))
        let line = Self.rendered { facts.forEachLineField(clientIP: nil, endedAt: .uptimeNanoseconds(5_000_000), _: $0) }
        let urls = line.filter { $0.hasPrefix("request_url=") || $0.hasPrefix("target_url=") }
        #expect(urls.count == 2)
        #expect(urls.allSatisfy { $0.hasSuffix("...(truncated)") && $0.utf8.count < RequestLogRecord.maxLoggedURLBytes + 40 })
    }

    @Test func anIdMadeForTheLineIsShownWhenTheFactsHaveNone() throws {
        var facts = Self.routedFacts(target: "/openai/chat/completions")
        let ids = RequestIDGenerator()
        let made = ids.nextText()
        let line = Self.rendered { facts.forEachLineField(clientIP: nil, endedAt: .uptimeNanoseconds(5_000_000), madeRequestID: made, $0) }
        let id = try #require(line.first { $0.hasPrefix("request_id=") }?.dropFirst("request_id=".count))
        #expect(id.utf8.count == 32 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        // The facts' own id wins.
        var withID = facts
        withID.requestID = "mine"
        let own = Self.rendered { withID.forEachLineField(clientIP: nil, endedAt: .uptimeNanoseconds(5_000_000), madeRequestID: made, $0) }
        #expect(own.contains("request_id=mine") && own.filter { $0.hasPrefix("request_id=") }.count == 1)
    }

    @Test func idsAsBytesAndAsStringsLookAlikeAndDoNotRepeat() {
        let ids = RequestIDGenerator()
        var seen = Set<String>()
        for n in 0..<200 {
            let id = n.isMultiple(of: 2) ? ids.next() : ids.nextText().withBytes { String(decoding: $0, as: UTF8.self) }
            #expect(id.utf8.count == 32 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
            seen.insert(id)
        }
        #expect(seen.count == 200)
    }
}
