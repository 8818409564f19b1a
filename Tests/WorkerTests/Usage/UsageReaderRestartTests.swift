import Testing

@testable import FluxgateWorker

/// A reader reused response after response (`restart`, as `UsageObserver` does) resets only what
/// the last response read (nothing after a body it did not read, the scanner and the tally after
/// a JSON body): each response reads as it does with a new reader, whatever came before it.
@Suite struct UsageReaderRestartTests {
    struct Response: CustomStringConvertible {
        var bytes: [UInt8]
        var contentType: String?
        var status: UInt = 200
        var complete = true
        var description: String
    }

    static let responses: [Response] = {
        var all = UsageCorpus.cases.map {
            Response(bytes: $0.bytes, contentType: $0.contentType, complete: $0.complete, description: $0.file)
        }
        let chat = UsageCorpus["openai-chat.json"].bytes
        let stream = UsageCorpus["anthropic-stream.sse"].bytes
        all.append(Response(bytes: chat, contentType: "application/json", status: 500, description: "500"))
        all.append(Response(bytes: chat, contentType: "text/html", description: "text/html"))
        all.append(Response(bytes: chat, contentType: nil, description: "JSON without a type"))
        all.append(Response(bytes: stream, contentType: nil, description: "events without a type"))
        all.append(Response(bytes: Array(chat.prefix(40)), contentType: "application/json", complete: false, description: "cut JSON"))
        all.append(Response(bytes: Array(stream.prefix(300)), contentType: "text/event-stream", complete: false, description: "cut events"))
        return all
    }()

    static func read(_ response: Response, with reader: inout UsageReader, names: UsageModelNames) -> UsageResult {
        reader.restart(
            status: response.status, contentType: .init(response.contentType), contentEncoding: .identity)
        response.bytes.withUnsafeBytes { reader.feed($0) }
        return reader.end(complete: response.complete, names: names)
    }

    @Test func eachResponseReadsAsWithANewReader() {
        let names = UsageModelNames()
        var reader = UsageReader()
        for before in Self.responses {
            for response in Self.responses {
                _ = Self.read(before, with: &reader, names: names)
                let reused = Self.read(response, with: &reader, names: names)
                let new = UsageFeed.read(
                    response.bytes, contentType: response.contentType, status: response.status,
                    complete: response.complete)
                #expect(reused == new, "\(response) after \(before)")
            }
        }
    }
}
