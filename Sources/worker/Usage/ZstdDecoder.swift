import CZstd

/// `zstd` (RFC 8878), through libzstd's streaming `ZSTD_decompressStream`; concatenated frames
/// are read one after the other.
final class ZstdDecoder {
    /// RFC 8878 §3.1.1.1.2 asks HTTP decoders to support windows up to 8 MiB and lets them refuse
    /// larger ones: without this limit a frame could make the decoder allocate up to 128 MiB
    /// (libzstd's default `ZSTD_WINDOWLOG_LIMIT_DEFAULT` is 27).
    static let maximumWindowLog: Int32 = 23

    private let context: OpaquePointer
    private let buffer = DecodeBuffer()
    /// The last call ended a frame and flushed it (`ZSTD_decompressStream` returned 0).
    private(set) var isFinished = false

    init?() {
        guard let context = ZSTD_createDCtx() else { return nil }
        self.context = context
        guard ZSTD_isError(ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, Self.maximumWindowLog)) == 0 else {
            ZSTD_freeDCtx(context)
            return nil
        }
    }

    deinit { ZSTD_freeDCtx(context) }

    func decode(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) -> Void) throws(UsageBodyDecoder.Failure) {
        guard !input.isEmpty else { return }
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while true {
            var sink = ZSTD_outBuffer(dst: buffer.base, size: buffer.capacity, pos: 0)
            let rc = ZSTD_decompressStream(context, &sink, &source)
            guard ZSTD_isError(rc) == 0 else { throw UsageBodyDecoder.Failure() }
            if sink.pos > 0 { output(buffer.bytes(sink.pos)) }
            isFinished = rc == 0
            // A full output buffer may hide more output; otherwise stop once the input is taken.
            if source.pos == source.size && sink.pos < sink.size { return }
        }
    }
}
