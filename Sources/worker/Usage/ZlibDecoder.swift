import CZlib

/// `gzip` (RFC 1952, concatenated members included) and `deflate`, through zlib's `inflate`.
///
/// `deflate` is meant to be zlib-wrapped (RFC 9110 §8.4.1.2, RFC 1950), but some servers send raw
/// deflate (RFC 1951) under that name. The two are told apart where `inflate` would first fail,
/// the two-byte zlib header (RFC 1950 §2.2: CM = 8, CINFO ≤ 7, the pair a multiple of 31): a
/// valid header is read as zlib, anything else as raw deflate — try zlib, fall back to raw.
final class ZlibDecoder {
    enum Format { case gzip, deflate }

    private let format: Format
    /// The stream state must not move: zlib keeps a pointer back to it (`inflateStateCheck`).
    private let stream: UnsafeMutablePointer<z_stream>
    private let buffer = DecodeBuffer()
    private var initialized = false
    /// `deflate`: the header's first byte when it came alone.
    private var headerByte: UInt8?
    private(set) var isFinished = false

    init(_ format: Format) {
        self.format = format
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
    }

    deinit {
        if initialized { inflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    func decode(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) -> Void) throws(UsageBodyDecoder.Failure) {
        guard !input.isEmpty else { return }
        if !initialized {
            guard let windowBits = windowBits(startingWith: input) else { return }
            guard fluxgate_inflateInit2(stream, windowBits) == Z_OK else { throw UsageBodyDecoder.Failure() }
            initialized = true
            if let first = headerByte {
                headerByte = nil
                try withUnsafeBytes(of: first) { (b) throws(UsageBodyDecoder.Failure) in try inflate(b, into: output) }
            }
        }
        try inflate(input, into: output)
    }

    /// 15 + 16: gzip; 15: zlib; -15: raw deflate (zlib.h, `inflateInit2`). nil: one byte so far.
    private func windowBits(startingWith input: UnsafeRawBufferPointer) -> Int32? {
        if format == .gzip { return 15 + 16 }
        let first: UInt8
        let second: UInt8
        if let held = headerByte {
            first = held
            second = input[0]
        } else if input.count >= 2 {
            first = input[0]
            second = input[1]
        } else {
            headerByte = input[0]
            return nil
        }
        let isZlibHeader = first & 0x0F == 8 && first >> 4 <= 7 && (UInt16(first) << 8 | UInt16(second)) % 31 == 0
        return isZlibHeader ? 15 : -15
    }

    private func inflate(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) -> Void) throws(UsageBodyDecoder.Failure) {
        guard !isFinished || format == .gzip else { return }  // bytes after a zlib or raw stream's end are not read
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: UInt8.self))
        stream.pointee.avail_in = UInt32(input.count)
        defer {
            stream.pointee.next_in = nil
            stream.pointee.avail_in = 0
        }
        while true {
            if isFinished {
                // Another gzip member (RFC 1952 §2.2) may follow; anything else is not read.
                guard stream.pointee.avail_in > 0, stream.pointee.next_in.pointee == 0x1F else { return }
                guard inflateReset(stream) == Z_OK else { throw UsageBodyDecoder.Failure() }
                isFinished = false
            }
            stream.pointee.next_out = buffer.base
            stream.pointee.avail_out = UInt32(buffer.capacity)
            let rc = CZlib.inflate(stream, Z_NO_FLUSH)
            let produced = buffer.capacity - Int(stream.pointee.avail_out)
            if produced > 0 { output(buffer.bytes(produced)) }
            switch rc {
            case Z_STREAM_END:
                isFinished = true
                if format != .gzip { return }
            case Z_OK:
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 { return }
            case Z_BUF_ERROR:
                return  // no progress possible: all input taken, nothing more to give
            default:
                throw UsageBodyDecoder.Failure()  // Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR, Z_STREAM_ERROR
            }
        }
    }
}
