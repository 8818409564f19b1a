import CBrotliEncoder
import CZlib
import CZstd
import Foundation
@testable import FluxgateWorker

/// One response of the conformance corpus (`Corpus/manifest.json`) and the usage it carries.
struct CorpusCase: Decodable, Sendable, CustomStringConvertible {
    struct Expected: Decodable, Sendable {
        var status: String
        var model: String?
        var inputTokens: Int?
        var outputTokens: Int?
        var cacheReadTokens: Int?
        var cacheWriteTokens: Int?
    }

    var file: String
    var contentType: String?
    var complete: Bool
    var covers: String
    var expect: Expected

    var description: String { file }

    var expected: UsageResult {
        UsageResult(
            model: expect.model, inputTokens: expect.inputTokens, outputTokens: expect.outputTokens,
            cacheReadTokens: expect.cacheReadTokens, cacheWriteTokens: expect.cacheWriteTokens,
            status: UsageResult.Status(rawValue: expect.status)!)
    }

    var bytes: [UInt8] { UsageCorpus.bytes(file) }
}

enum UsageCorpus {
    /// Read from the source tree (the test target excludes the folder from its sources).
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")

    private struct Manifest: Decodable {
        var cases: [CorpusCase]
    }

    static let cases: [CorpusCase] = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("manifest.json"))
        return try! JSONDecoder().decode(Manifest.self, from: data).cases
    }()

    static func bytes(_ file: String) -> [UInt8] {
        [UInt8](try! Data(contentsOf: directory.appendingPathComponent(file)))
    }

    static subscript(file: String) -> CorpusCase { cases.first { $0.file == file }! }
}

/// Feeds a body to a reader in the pieces given.
enum UsageFeed {
    static func read(
        _ bytes: [UInt8], contentType: String?, contentEncoding: String? = nil, status: UInt = 200,
        complete: Bool = true, cuts: some Sequence<Int>
    ) -> UsageResult {
        var reader = UsageReader(status: status, contentType: contentType, contentEncoding: contentEncoding)
        bytes.withUnsafeBytes { all in
            var start = 0
            for cut in cuts where cut > start && cut < all.count {
                reader.feed(UnsafeRawBufferPointer(rebasing: all[start..<cut]))
                start = cut
            }
            reader.feed(UnsafeRawBufferPointer(rebasing: all[start...]))
        }
        return reader.end(complete: complete)
    }

    static func read(
        _ bytes: [UInt8], contentType: String?, contentEncoding: String? = nil, status: UInt = 200,
        complete: Bool = true
    ) -> UsageResult {
        read(
            bytes, contentType: contentType, contentEncoding: contentEncoding, status: status, complete: complete,
            cuts: EmptyCollection())
    }

    /// A body in pieces as a server writes them: each event of an event stream with its blank
    /// line (LF, CRLF or CR endings), or the whole body when it has no blank line.
    static func events(_ bytes: [UInt8]) -> [[UInt8]] {
        var pieces: [[UInt8]] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            var blank = 0
            if b == 0x0A, i + 1 < bytes.count, bytes[i + 1] == 0x0A { blank = 2 }
            if b == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0D { blank = 2 }
            if b == 0x0D, i + 3 < bytes.count, bytes[i + 1] == 0x0A, bytes[i + 2] == 0x0D, bytes[i + 3] == 0x0A { blank = 4 }
            if blank > 0 {
                pieces.append(Array(bytes[start..<(i + blank)]))
                start = i + blank
                i = start
            } else {
                i += 1
            }
        }
        if start < bytes.count || pieces.isEmpty { pieces.append(Array(bytes[start...])) }
        return pieces
    }

    /// Every way of cutting `count` bytes in two, then one byte at a time: the result of each.
    static func everySplit(count: Int) -> [[Int]] {
        (0...count).map { [$0] } + [Array(1..<max(count, 1))]
    }

    /// For large bodies: every cut within `radius` bytes of the start, the end and each point of
    /// `around`, and cuts every `stride` bytes from a few offsets.
    static func denseSample(count: Int, stride step: Int, around points: [Int] = [], radius: Int = 256) -> [[Int]] {
        var plans: [[Int]] = []
        for point in [0, count] + points {
            plans += (max(0, point - radius)...min(count, point + radius)).map { [$0] }
        }
        for offset in [1, 7, step / 2, step - 1] { plans.append(Array(Swift.stride(from: offset, to: count, by: step))) }
        return plans
    }
}

/// The content codings the corpus is also read through, made with the same libraries.
enum CorpusEncoding: String, CaseIterable, Sendable {
    case gzip, zlibDeflate, rawDeflate, brotli, zstd

    /// The `Content-Encoding` value.
    var header: String {
        switch self {
        case .gzip: "gzip"
        case .zlibDeflate, .rawDeflate: "deflate"
        case .brotli: "br"
        case .zstd: "zstd"
        }
    }

    func encode(_ input: [UInt8]) -> [UInt8] {
        encode(pieces: [input])
    }

    /// As a server streams it: each piece flushed (zlib `Z_SYNC_FLUSH`, brotli
    /// `BROTLI_OPERATION_FLUSH`, zstd `ZSTD_e_flush`) so that it can be decoded before the next.
    func encode(pieces: [[UInt8]]) -> [UInt8] {
        switch self {
        case .gzip: Compress.zlib(pieces, windowBits: 15 + 16)
        case .zlibDeflate: Compress.zlib(pieces, windowBits: 15)
        case .rawDeflate: Compress.zlib(pieces, windowBits: -15)
        case .brotli: Compress.brotli(pieces)
        case .zstd: Compress.zstd(pieces)
        }
    }

    /// A corpus file as it is sent: JSON in one piece, an event stream flushed after each event.
    func encode(corpusFile bytes: [UInt8]) -> [UInt8] {
        encode(pieces: UsageFeed.events(bytes))
    }
}

/// Compressors over the same libraries the reader decodes with, streaming so that a piece can be
/// flushed.
enum Compress {
    private static let chunk = 4096

    /// zlib's `deflate`; `windowBits` as in `deflateInit2` (15 + 16 gzip, 15 zlib, -15 raw).
    static func zlib(_ pieces: [[UInt8]], windowBits: Int32, level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        precondition(fluxgate_deflateInit2(&stream, level, windowBits) == Z_OK)
        defer { deflateEnd(&stream) }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        for (index, piece) in pieces.enumerated() {
            let flush = index == pieces.count - 1 ? Z_FINISH : Z_SYNC_FLUSH
            var piece = piece
            piece.withUnsafeMutableBufferPointer { source in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                repeat {
                    let produced = buffer.withUnsafeMutableBufferPointer { sink in
                        stream.next_out = sink.baseAddress
                        stream.avail_out = UInt32(sink.count)
                        let rc = deflate(&stream, flush)
                        precondition(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR)
                        return sink.count - Int(stream.avail_out)
                    }
                    output += buffer[..<produced]
                } while stream.avail_out == 0
            }
        }
        return output
    }

    static func brotli(_ pieces: [[UInt8]], quality: UInt32 = 5) -> [UInt8] {
        let state = BrotliEncoderCreateInstance(nil, nil, nil)!
        defer { BrotliEncoderDestroyInstance(state) }
        precondition(BrotliEncoderSetParameter(state, BROTLI_PARAM_QUALITY, quality) == 1)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        for (index, piece) in pieces.enumerated() {
            let operation = index == pieces.count - 1 ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH
            piece.withUnsafeBufferPointer { source in
                var availableIn = source.count
                var nextIn = source.baseAddress
                repeat {
                    let produced = buffer.withUnsafeMutableBufferPointer { sink in
                        var availableOut = sink.count
                        var nextOut = sink.baseAddress
                        precondition(
                            BrotliEncoderCompressStream(
                                state, operation, &availableIn, &nextIn,
                                &availableOut, &nextOut, nil) == 1)
                        return sink.count - availableOut
                    }
                    output += buffer[..<produced]
                } while availableIn > 0 || BrotliEncoderHasMoreOutput(state) == 1
                    || (operation == BROTLI_OPERATION_FINISH && BrotliEncoderIsFinished(state) == 0)
            }
        }
        return output
    }

    /// `windowLog`: the window the frame header announces (0: libzstd's choice for the level).
    static func zstd(_ pieces: [[UInt8]], level: Int32 = 3, windowLog: Int32 = 0) -> [UInt8] {
        let context = ZSTD_createCCtx()!
        defer { ZSTD_freeCCtx(context) }
        precondition(ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)) == 0)
        precondition(ZSTD_isError(ZSTD_CCtx_setParameter(context, ZSTD_c_windowLog, windowLog)) == 0)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        for (index, piece) in pieces.enumerated() {
            let directive = index == pieces.count - 1 ? ZSTD_e_end : ZSTD_e_flush
            piece.withUnsafeBytes { source in
                var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
                var remaining = 0
                repeat {
                    let produced = buffer.withUnsafeMutableBytes { sink in
                        var out = ZSTD_outBuffer(dst: sink.baseAddress, size: sink.count, pos: 0)
                        remaining = ZSTD_compressStream2(context, &out, &input, directive)
                        precondition(ZSTD_isError(remaining) == 0)
                        return out.pos
                    }
                    output += buffer[..<produced]
                } while remaining != 0 || input.pos < input.size
            }
        }
        return output
    }
}
