/// Decodes a copy of a compressed body for the usage reader; the client is sent the provider's
/// bytes as they are (spec §2). Memory is bounded: decoded bytes go through one buffer of
/// `outputCapacity` bytes that is handed to the reader each time it fills and then reused, so
/// nothing decoded is kept; each library holds its own window besides (zlib 32 KiB; brotli up to
/// the 16 MiB its format allows; zstd up to `ZstdDecoder.maximumWindowLog`).
///
/// An enum over the three decoders rather than a protocol existential: one switch per chunk, no
/// witness-table call.
enum UsageBodyDecoder {
    case zlib(ZlibDecoder)
    case brotli(BrotliDecoder)
    case zstd(ZstdDecoder)

    static let outputCapacity = 16 * 1024

    /// Corrupt, unsupported or oversized compressed data: the usage is then `unreadable`.
    struct Failure: Error {}

    init?(_ coding: UsageReader.ContentCoding) {
        switch coding {
        case .gzip: self = .zlib(ZlibDecoder(.gzip))
        case .deflate: self = .zlib(ZlibDecoder(.deflate))
        case .brotli:
            guard let decoder = BrotliDecoder() else { return nil }
            self = .brotli(decoder)
        case .zstd:
            guard let decoder = ZstdDecoder() else { return nil }
            self = .zstd(decoder)
        case .identity, .unsupported:
            return nil
        }
    }

    /// Decodes `input` (the next encoded bytes), handing what it yields to `output`.
    func decode(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) -> Void) throws(Failure) {
        switch self {
        case .zlib(let d): try d.decode(input, into: output)
        case .brotli(let d): try d.decode(input, into: output)
        case .zstd(let d): try d.decode(input, into: output)
        }
    }

    /// The encoded stream ended where its format says it ends.
    var isFinished: Bool {
        switch self {
        case .zlib(let d): d.isFinished
        case .brotli(let d): d.isFinished
        case .zstd(let d): d.isFinished
        }
    }
}

/// The output buffer the decoders share the shape of: allocated once per decoder.
struct DecodeBuffer: ~Copyable {
    let base: UnsafeMutablePointer<UInt8>
    let capacity = UsageBodyDecoder.outputCapacity

    init() { base = .allocate(capacity: capacity) }

    deinit { base.deallocate() }

    func bytes(_ count: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
