import NIOCore
import NIOHTTP1
import Testing
@testable import FluxgateWorker

/// The worker writes its request line straight from a request's facts
/// (`RequestFacts.forEachLineField`); a logger of a test's own gets `RequestLogRecord(facts)`.
/// Both give the same fields, values and order (docs/logging.md "The request line").
@Suite struct RequestLineFromFactsTests {
    static func rendered(_ each: ((StaticString, RequestLogRecord.FieldValue) -> Void) -> Void) -> [String] {
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

    static let variants: [(String, @Sendable (inout RequestFacts) -> Void)] = [
        ("plain", { _ in }),
        (
            "ids, tries, error",
            {
                $0.requestID = "client-id.1"
                $0.upstreamRequestID = "req_abc"
                $0.attempts = 3
                $0.upstreamError = UpstreamErrorCause(layer: .connect, reason: "Connection refused")
            }
        ),
        (
            "usage",
            {
                $0.usage = UsageResult(model: "gpt-4o", inputTokens: 12, outputTokens: 34, cacheReadTokens: 5, status: .reported)
            }
        ),
        (
            "the client's model, no counts",
            {
                $0.requestModel = "mock-json"
                $0.usage = UsageResult(status: .missing)
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
            }
        ),
    ]

    @Test(arguments: ["/openai/chat/completions", "/openai/x?key=sk-secret&q=1"], 0..<variants.count)
    func theLineFromTheFactsIsTheRecordsLine(target: String, variant: Int) {
        var facts = Self.routedFacts(target: target)
        Self.variants[variant].1(&facts)
        if facts.requestID == nil { facts.requestID = "0123456789abcdef0123456789abcdef" }
        let ended = NIODeadline.uptimeNanoseconds(19_000_000)
        let fromRecord = Self.rendered { RequestLogRecord(facts, clientIP: "127.0.0.1", endedAt: ended).forEachField($0) }
        let fromFacts = Self.rendered { facts.forEachLineField(clientIP: "127.0.0.1", endedAt: ended, _: $0) }
        #expect(fromFacts == fromRecord, "\(Self.variants[variant].0)")
        #expect(fromFacts.contains("duration_ms=14"))
        #expect(!fromFacts.joined().contains("sk-secret"))
    }

    @Test func anIdMadeForTheLineIsShownWhenTheFactsHaveNone() throws {
        let facts = Self.routedFacts(target: "/openai/chat/completions")
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

    /// Eight digits a step give what `String(radix: 16)`, zero-padded, gives.
    @Test func idDigitsAreTheValuesHexDigits() {
        var random = SystemRandomNumberGenerator()
        let values: [UInt64] = [0, 1, 9, 10, 15, 16, 0x9999_9999_aaaa_aaaa, 0xffff_ffff_ffff_ffff, 0x0123_4567_89ab_cdef]
        for high in values + (0..<200).map({ _ in random.next() }) {
            let low = ~high &* 31
            var bytes = [UInt8](repeating: 0, count: 32)
            bytes.withUnsafeMutableBytes { RequestIDGenerator.write(high, low, into: $0) }
            let padded = { (v: UInt64) in String(repeating: "0", count: 16 - String(v, radix: 16).count) + String(v, radix: 16) }
            #expect(String(decoding: bytes, as: UTF8.self) == padded(high) + padded(low))
        }
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
