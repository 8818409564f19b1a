#if canImport(Glibc)
import Glibc
#endif

extension UsageReader {
    /// What a response's `Content-Type` says about where its usage is.
    enum MediaType: Equatable {
        /// `application/json`, or any `…/…+json`.
        case json
        /// `text/event-stream`.
        case eventStream
        /// No `Content-Type`, or `text/plain`: the body's first byte decides.
        case unknown
        /// Anything else (audio, images, HTML): not read.
        case other

        /// From the header's value bytes: `type/subtype` before any `;` parameter, without case
        /// (RFC 9110 §8.3.1). (Inlined: what providers send, byte for byte, is two or three word
        /// comparisons; any other form is parsed out of line.)
        @inline(__always)
        init(headerValue value: UnsafeRawBufferPointer?) {
            guard let value, value.baseAddress != nil else { self = .unknown; return }
            if value.count == 16 && MemberName.equals(value, "application/json") { self = .json; return }
            if value.count == 17 && MemberName.equals(value, "text/event-stream") { self = .eventStream; return }
            self = Self.parsed(value)
        }

        @inline(never)
        private static func parsed(_ value: UnsafeRawBufferPointer) -> MediaType {
            let base = value.baseAddress!
            var s = 0
            var e = value.count
            if let semicolon = memchr(base, Int32(UInt8(ascii: ";")), e) { e = base.distance(to: UnsafeRawPointer(semicolon)) }
            while s < e, value[s] == 0x20 || value[s] == 0x09 { s &+= 1 }
            while e > s, value[e &- 1] == 0x20 || value[e &- 1] == 0x09 { e &-= 1 }
            // The common types first (each comparison fails at once on the length).
            if ASCIIBytes.equals(value, s..<e, lowercase: "application/json") {
                return .json
            } else if ASCIIBytes.equals(value, s..<e, lowercase: "text/event-stream") {
                return .eventStream
            } else if s == e || ASCIIBytes.equals(value, s..<e, lowercase: "text/plain") {
                return .unknown
            } else if e &- s > 5 && ASCIIBytes.equals(value, (e &- 5)..<e, lowercase: "+json") {
                return .json
            } else {
                return .other
            }
        }

        init(_ value: String?) {
            guard var value else { self = .unknown; return }
            self = value.withUTF8 { MediaType(headerValue: UnsafeRawBufferPointer($0)) }
        }
    }

    /// What a response's `Content-Encoding` asks of the reader (RFC 9110 §8.4).
    enum ContentCoding: Equatable {
        case identity, gzip, deflate, brotli, zstd
        /// An unknown coding, or several codings applied one after the other: `unreadable`.
        case unsupported

        /// From one header line's value: a comma-separated list of codings, applied in order.
        init(headerValue value: UnsafeRawBufferPointer?) {
            self = .identity
            guard let value else { return }
            ASCIIBytes.forEachListElement(value, 0..<value.count) { add(Self.single(value, $0)) }
        }

        init(_ value: String?) {
            guard var value else { self = .identity; return }
            self = value.withUTF8 { ContentCoding(headerValue: UnsafeRawBufferPointer($0)) }
        }

        /// A further coding applied after this one (another list element, or another
        /// `Content-Encoding` line): the reader decodes one coding at most.
        mutating func add(_ next: ContentCoding) {
            if next == .identity { return }
            self = self == .identity ? next : .unsupported
        }

        private static func single(_ bytes: UnsafeRawBufferPointer, _ token: Range<Int>) -> ContentCoding {
            if ASCIIBytes.equals(bytes, token, lowercase: "identity") { return .identity }
            if ASCIIBytes.equals(bytes, token, lowercase: "gzip") || ASCIIBytes.equals(bytes, token, lowercase: "x-gzip") {
                return .gzip
            }
            if ASCIIBytes.equals(bytes, token, lowercase: "deflate") { return .deflate }
            if ASCIIBytes.equals(bytes, token, lowercase: "br") { return .brotli }
            if ASCIIBytes.equals(bytes, token, lowercase: "zstd") { return .zstd }
            return .unsupported
        }
    }
}
