import Foundation  // only to check that the wire format is the one Foundation's JSON coders spoke
import Testing
@testable import Common

/// The control channel's own JSON coder (no Foundation in the executables): every value the
/// frames carry round-trips, and bad input is a `ControlProtocolError` that names no value.
@Suite struct ControlJSONTests {
    static let awkward = [
        "", "plain", "quote \" backslash \\ slash /", "\\\"\\\\\\n", "tab\tnewline\nreturn\rbell\u{07}nul\u{00}end",
        String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }) + "\u{7F}",
        "é (precomposed) e\u{301} (combining)", "日本語", "emoji 🧪👩‍👩‍👧", "line separator \u{2028} paragraph \u{2029}",
        "\u{FEFF}bom", "\u{10FFFF}", "}{][,:\"",
    ]

    static func fullConfiguration(text: String = "x") -> Configuration {
        Configuration(
            server: .init(
                bindAddress: BindAddress(parsing: "[::1]:0")!, maxConnections: .max, workers: .count(3),
                tls: .init(
                    certificateFile: "/etc/\(text).pem", certificateChainPEM: "-----BEGIN\n\(text)\n",
                    privateKeyFile: "k.pem", privateKeyPEM: Secret("key \(text)"))),
            upstreams: .init(
                requestTimeoutMs: .max, streamIdleTimeoutMs: 1,
                entries: [
                    .init(
                        name: "openai \(text)",
                        targetURL: TargetURL(
                            scheme: .https, host: "api.example.com", explicitPort: 8443, basePath: "/v1/\(text)", query: text),
                        apiKey: Secret("sk-\(text)"), requestPath: "/\(text)", apiKeyHeader: .xAPIKey,
                        tlsCA: .init(file: "ca.pem", pem: text)),
                    .init(
                        name: "local", targetURL: TargetURL(scheme: .http, host: "127.0.0.1", explicitPort: nil, basePath: "", query: nil),
                        apiKey: Secret(""), requestPath: "/", apiKeyHeader: .apiKey),
                ]),
            apiKeys: .init(
                staticKeys: [.init(id: nil, key: Secret(text)), .init(id: text, key: Secret("k"), upstreams: ["a", text])],
                jwt: [.init(id: text, key: Secret(text))]))
    }

    static func roundTrip(_ message: ControlMessage) throws -> ControlMessage? {
        var decoder = ControlFrameDecoder()
        decoder.feed(try ControlFrame.encode(message))
        return try decoder.next()
    }

    static func decodeFrame(_ json: String) throws -> ControlMessage? {
        var decoder = ControlFrameDecoder()
        let payload = Array(json.utf8)
        decoder.feed([0, 0, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload)
        return try decoder.next()
    }

    @Test(arguments: awkward)
    func everyStringRoundTrips(_ text: String) throws {
        let message = ControlMessage(type: .applyConfig, gen: 2, body: .init(config: Self.fullConfiguration(text: text), error: text))
        let received = try #require(try Self.roundTrip(message))
        #expect(received == message)
        #expect(received.body.error?.unicodeScalars.elementsEqual(text.unicodeScalars) == true)
    }

    @Test func integersKeepEveryBitAtTheirLimits() throws {
        let message = ControlMessage(type: .drain, gen: .max, body: .init(deadlineMs: .max))
        #expect(try Self.roundTrip(message) == message)
    }

    @Test func absentOptionalsAreLeftOutAndReadBackAsNil() throws {
        let bytes = try ControlJSONEncoder().encode(ControlMessage(type: .drain, gen: 6))
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"v":1,"type":"drain","gen":6,"body":{}}"#)
        #expect(try Self.decodeFrame(#"{"v":1,"type":"drain","gen":6,"body":{"error":null}}"#) == ControlMessage(type: .drain, gen: 6))
    }

    @Test func theWireFormatIsTheOneFoundationSpoke() throws {
        let message = ControlMessage(
            type: .applyConfig, gen: 9,
            body: .init(config: Self.fullConfiguration(text: Self.awkward.joined()), deadlineMs: 30_000))
        let ours = try ControlJSONEncoder().encode(message)
        #expect(try JSONDecoder().decode(ControlMessage.self, from: Data(ours)) == message)
        let theirs = try JSONEncoder().encode(message)
        #expect(try ControlJSONDecoder().decode(ControlMessage.self, from: Array(theirs)) == message)
    }

    static let wrongShape = [
        #"[]"#, #"{"v":1,"type":"drain","gen":1}"#, #"{"v":1,"type":"reboot","gen":1,"body":{}}"#,
        #"{"v":1,"type":"drain","gen":-1,"body":{}}"#, #"{"v":1,"type":"drain","gen":1.0,"body":{}}"#,
        #"{"v":1,"type":"drain","gen":18446744073709551616,"body":{}}"#,
        #"{"v":"1","type":"drain","gen":1,"body":{}}"#, #"{"v":1,"type":"drain","gen":1,"body":{"deadlineMs":-1}}"#,
        #"{"v":1,"type":"drain","gen":1,"body":{"config":{"version":1}}}"#,
    ]

    @Test(arguments: wrongShape)
    func jsonOfTheWrongShapeIsAProtocolError(_ json: String) {
        #expect(throws: ControlProtocolError.self) { try Self.decodeFrame(json) }
    }

    @Test func errorsSayWhereButNeverWhat() throws {
        let secret = "sk-live-0123456789"
        let frames = [
            #"{"v":1,"type":"\#(secret)","gen":1,"body":{}}"#,
            #"{"v":1,"type":"drain","gen":"\#(secret)","body":{}}"#,
            #"{"v":1,"type":"drain","gen":1,"body":{"error":"\#(secret)\x"}}"#,
            #"{"v":1,"type":"drain","gen":1,"body":{"config":{"version":1,"server":{},"upstreams":{},"apiKeys":{"staticKeys":[{"key":1}],"jwt":"\#(secret)"}}}}"#,
        ]
        for frame in frames {
            let error = try #require(throws: ControlProtocolError.self) { try Self.decodeFrame(frame) }
            #expect(!error.description.contains(secret), "\(error)")
            #expect(!String(reflecting: error).contains(secret))
        }
        let typeError = try #require(throws: ControlProtocolError.self) { try Self.decodeFrame(frames[1]) }
        #expect(typeError == .malformed("expected UInt64, found a string at gen"))
    }
}
