import Testing
@testable import Common

@Suite struct ControlFrameTests {
    func sample(_ gen: UInt64) -> ControlMessage {
        ControlMessage(
            type: .applyConfig, gen: gen,
            body: .init(config: Configuration(apiKeys: .init(jwt: [.init(id: "dev", key: Secret(String(repeating: "k", count: 32)))]))))
    }

    @Test func framesSurviveBeingSplitAtEveryByte() throws {
        let stream = try ControlFrame.encode(sample(1)) + ControlFrame.encode(sample(2)) + ControlFrame.encode(sample(3))
        for cut in 1..<stream.count {
            var decoder = ControlFrameDecoder()
            var received: [ControlMessage] = []
            decoder.feed(stream[..<cut])
            while let m = try decoder.next() { received.append(m) }
            decoder.feed(stream[cut...])
            while let m = try decoder.next() { received.append(m) }
            #expect(received == [sample(1), sample(2), sample(3)], "cut at \(cut)")
        }
    }

    @Test func oversizedFrameIsRejectedBeforeItsBytesArrive() {
        var decoder = ControlFrameDecoder()
        decoder.feed([0x01, 0x00, 0x00, 0x01])  // 16 MiB + 1
        #expect(throws: ControlProtocolError.frameTooLarge(16 * 1024 * 1024 + 1)) { try decoder.next() }
    }

    @Test func malformedJSONIsAProtocolError() {
        var decoder = ControlFrameDecoder()
        decoder.feed([0, 0, 0, 3] + Array("{x}".utf8))
        #expect(throws: ControlProtocolError.self) { try decoder.next() }
    }

    @Test func unknownVersionIsRejected() throws {
        var message = sample(1)
        message.v = 2
        var decoder = ControlFrameDecoder()
        decoder.feed(try ControlFrame.encode(message))
        #expect(throws: ControlProtocolError.unsupportedVersion(2)) { try decoder.next() }
    }

    @Test func configurationTravelsIntactIncludingSecrets() throws {
        var decoder = ControlFrameDecoder()
        decoder.feed(try ControlFrame.encode(sample(9)))
        let received = try #require(try decoder.next())
        #expect(received.body.config?.apiKeys.jwt.first?.key.value == String(repeating: "k", count: 32))
    }
}
