import CByteClasses

#if canImport(Glibc)
import Glibc
#endif

/// Reads the token usage of one response as it is relayed (gateway spec §2; `docs/usage.md`).
///
/// The exchange makes one per response and calls, in order:
///
///     var usage = UsageReader(status: head.status, contentType: .init(headerValue: ct),
///                             contentEncoding: .init(headerValue: ce))
///     usage.feed(payload)                      // each payload slice as relayed (ByteBuffer or raw
///                                              // bytes; no chunk framing), in order
///     let result = usage.end(complete: true)   // false: the client left or the upstream cut
///
/// The body's shape decides how it is read, never the request's path: `text/event-stream` is split
/// into events (`SSEEventSplitter`) whose data is scanned as JSON; `application/json` or `+json`
/// is scanned as one document; with no `Content-Type` (or `text/plain`) the first byte that is not
/// white space decides (`{` or `[`: JSON; else events); any other type is not read (`missing`).
/// A non-2xx response carries no usage and is not read.
///
/// Cost, by design (measured by the lead with callgrind, not claimed here): nothing copies the
/// relayed bytes; they are scanned where they lie. An identity body costs one pass of the event
/// splitter (a loop looking for CR and LF in `data` values) and of the JSON scanner (a loop over
/// strings looking for `"` and `\`, one branch per structural byte). Per chunk there is no
/// allocation: the scanner's and splitter's state is inline in this value (`retainedBytes`), the
/// model name becomes a `String` once per response. A compressed body is decoded through one
/// 16 KiB buffer that is reused (`UsageBodyDecoder`), the only copy made.
///
/// A value type, except for the decoder of a compressed body (a class, for its C state): keep one
/// reader per response and do not use a copy of it after feeding the original.
struct UsageReader {
    private enum Body {
        /// Not read: a non-2xx status, or a type that carries no usage.
        case inert
        /// No byte but white space yet, and no type to tell: the first one decides.
        case undecided
        case json
        case events
    }

    private var body = Body.inert
    private var decoder: UsageBodyDecoder?
    private var unreadable = false
    /// Encoded bytes came (an empty body is not a cut compressed stream).
    private var encodedBytesSeen = false
    private var splitter = SSEEventSplitter()
    /// An event's start that a read cut (`SSEEventCarry`: at most 4 KiB, allocated once).
    private var carry = SSEEventCarry()
    private var collector = UsageCollector()
    /// `end` came: how the response ended (nil: it has not). Nothing is read after it.
    private var ended: Bool?
    /// Since `stop`: a JSON body whose object the scanner read whole (`readWhole`), of a document
    /// whose `type` gives it no rule of its own. The result is made from the document
    /// (`wholeResult`); the tally is not used, nor reset by `restart`. (The usual JSON body: the
    /// tally's add, its reset and its result were ~200 instructions of the ~1,300 the tap cost a
    /// response, docs/performance.md "Session 16, usagetap".) False is always safe: the tally is reset.
    private var wholeDocument = false
    /// Since `feed`: the usual body (identity JSON, its object whole in the first slice but white
    /// space, no top-level `type`) read by one C call (`readDirect`, docs/performance.md "session
    /// 16, usagedirect"): its counts are `directUsage`, its model the document's; the scanner, the
    /// rest of the document and the tally are untouched. Its result is `wholeResult`'s.
    private var direct = false
    /// After `direct`, more than white space came: the body is not one JSON object (nothing read).
    private var directSpoiled = false
    /// The direct read's root `usage`, normalised (nil: none, or not an object).
    private var directUsage: NormalizedUsage?
    /// False: every body is read the general way (tests compare both).
    var readsDirect = true
    /// The CPU takes the C read (asked once per reader, not once per response: the static's
    /// `swift_once` was ~10 instructions a response).
    private let directCPU = UsageJSONScanner.jsonSkipAVX2

    init(status: UInt, contentType: MediaType, contentEncoding: ContentCoding) {
        configure(status: status, contentType: contentType, contentEncoding: contentEncoding)
    }

    /// Not reading anything until `restart`: the state a reused reader starts in.
    init() {}

    /// Reads a new response with this value's memory, in place: what `init` does, without
    /// building a kilobyte of state and copying it (the tap keeps one reader per connection).
    @inline(__always)
    mutating func restart(status: UInt, contentType: MediaType, contentEncoding: ContentCoding) {
        // Most responses had none: no release of an empty optional.
        if decoder != nil { decoder = nil }
        unreadable = false
        encodedBytesSeen = false
        // What the last response read, and only that (`body` is still its way of reading):
        // nothing for a body not read, the scanner and the tally for a JSON body.
        switch body {
        case .inert: break
        case .json:
            if direct {
                // Only the model was kept.
                direct = false
                directSpoiled = false
                collector.scanner.document.model.clear()
                break
            }
            collector.scanner.reset()
            // Untouched after a body read whole.
            if !wholeDocument { collector.tally.reset() }
            wholeDocument = false
        case .undecided, .events:
            splitter.reset()
            carry.reset()
            collector.reset()
        }
        ended = nil
        configure(status: status, contentType: contentType, contentEncoding: contentEncoding)
    }

    @inline(__always)
    private mutating func configure(status: UInt, contentType: MediaType, contentEncoding: ContentCoding) {
        collector.scanner.countsDeltas = false
        guard (200..<300).contains(status) else {
            body = .inert
            return
        }
        switch contentType {
        case .json: body = .json
        case .eventStream:
            body = .events
            collector.scanner.countsDeltas = true
        case .unknown: body = .undecided
        case .other: body = .inert
        }
        guard body != .inert else { return }
        switch contentEncoding {
        case .identity:
            break
        case .gzip, .deflate, .brotli, .zstd, .unsupported:
            decoder = UsageBodyDecoder(contentEncoding)
            if decoder == nil { unreadable = true }
        }
    }

    /// Convenience for tests and callers holding header values as text.
    init(status: UInt, contentType: String?, contentEncoding: String?) {
        self.init(status: status, contentType: MediaType(contentType), contentEncoding: ContentCoding(contentEncoding))
    }

    /// The next payload bytes of the response, in order (no chunked framing), as they are relayed.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        // The usual: an identity JSON body, straight to the scanner.
        if body == .json, decoder == nil, !unreadable, ended == nil {
            if direct {
                if !directSpoiled, bytes.contains(where: { !UsageJSONScanner.isWhitespace($0) }) { directSpoiled = true }
                return
            }
            if !readDirect(bytes) { collector.scanner.scan(bytes) }
            return
        }
        guard body != .inert, !unreadable, ended == nil else { return }
        guard let decoder else { read(bytes); return }
        encodedBytesSeen = encodedBytesSeen || !bytes.isEmpty
        do {
            try decoder.decode(bytes) { read($0) }
        } catch {
            unreadable = true
            self.decoder = nil
        }
    }

    /// The response ended: `complete` when it was relayed whole, false when the client left or the
    /// upstream cut it. Later calls return the same result, each with a new model `String`.
    mutating func end(complete: Bool) -> UsageResult {
        stop(complete: complete)
        if direct {
            return wholeResult(
                complete: complete, model: namesDirectModel ? collector.scanner.document.model.string : nil,
                usage: directSpoiled ? nil : directUsage)
        }
        guard !wholeDocument else {
            return wholeResult(
                complete: complete, model: namesWholeModel ? collector.scanner.document.model.string : nil, usage: wholeUsage)
        }
        return result(complete: complete, model: collector.tally.modelString)
    }

    /// `end`, the model's `String` found in or kept by `names` (the worker's, `UsageObserver`).
    mutating func end(complete: Bool, names: UsageModelNames) -> UsageResult {
        stop(complete: complete)
        if direct {
            return wholeResult(
                complete: complete, model: namesDirectModel ? names.name(of: &collector.scanner.document.model) : nil,
                usage: directSpoiled ? nil : directUsage)
        }
        guard !wholeDocument else {
            return wholeResult(
                complete: complete, model: namesWholeModel ? names.name(of: &collector.scanner.document.model) : nil,
                usage: wholeUsage)
        }
        return talliedResult(complete: complete, names: names)
    }

    /// The tally's result, its model's `String` from `names`. (Out of line: merged with the
    /// whole document's in `end`, each result was copied into `end`'s at the join.)
    @inline(never)
    private mutating func talliedResult(complete: Bool, names: UsageModelNames) -> UsageResult {
        result(complete: complete, model: collector.tally.modelName(in: names))
    }

    /// The document read whole names a model, as the tally keeps one (`UsageTally.name`).
    private var namesWholeModel: Bool {
        collector.scanner.finish() && collector.scanner.document.model.isComplete && collector.scanner.document.model.count > 0
    }

    /// The direct read's document names a model (`namesWholeModel`).
    private var namesDirectModel: Bool {
        !directSpoiled && collector.scanner.document.model.isComplete && collector.scanner.document.model.count > 0
    }

    /// The root `usage` of the document read whole, normalised: nil when more than white space
    /// followed the object.
    private var wholeUsage: NormalizedUsage? {
        guard collector.scanner.finish(), collector.scanner.document.usage.present else { return nil }
        return collector.scanner.document.usage.normalized
    }

    /// What the tally's `add` and `result` make of the one document of a JSON body read whole
    /// (`EventKind.other`: its `model`, its top-level `usage`; no stream, so no delta estimate),
    /// without them: nothing when more than white space followed the object. (Out of line, and
    /// made by the tally's initializer: inlined into `end`, the result was made on the stack
    /// and copied into the caller's. `model` consumed: borrowed, its `String` was retained for
    /// the result and released by the caller.)
    @inline(never)
    private mutating func wholeResult(complete: Bool, model: consuming String?, usage: NormalizedUsage?) -> UsageResult {
        let status: UsageResult.Status =
            unreadable || collector.skippedEvents > 0
            ? .unreadable : !(ended ?? complete) ? .truncated : usage != nil ? .reported : .missing
        return UsageResult(
            model: model, inputTokens: usage?.input, outputTokens: usage?.output, cacheReadTokens: usage?.cacheRead,
            cacheWriteTokens: usage?.cacheWrite, status: status)
    }

    /// (`mutating` only so that the reader is read in place: a non-mutating call copied it whole.)
    @inline(__always)
    private mutating func result(complete: Bool, model: String?) -> UsageResult {
        collector.tally.result(
            complete: ended ?? complete, unreadable: unreadable || collector.skippedEvents > 0,
            stream: body == .events, model: model)
    }

    /// What `end` does but for making the result: nothing is read after it, and `end` gives
    /// the result for this `complete`, whatever it is then passed.
    mutating func stop(complete: Bool) {
        guard ended == nil else { return }
        ended = complete
        if complete, encodedBytesSeen, let decoder, !decoder.isFinished { unreadable = true }
        // Most responses had none: no release of an empty optional.
        if decoder != nil { decoder = nil }
        guard body == .json, !direct else { return }
        // A `type` with a rule of its own (`message_start`, …) is the tally's to read.
        if collector.scanner.readWhole,
            !collector.scanner.document.type.isComplete || UsageTally.EventKind(collector.scanner.document.type) == .other
        {
            wholeDocument = true
            return
        }
        collector.bodyEnded()
    }

    /// Bytes of this value's own state (inline, fixed), whatever it has read; a decoder adds its
    /// 16 KiB buffer and its library's window.
    static var retainedBytes: Int { MemoryLayout<UsageReader>.size }

    /// The usual body's whole read (`direct`), from the document's start: false, nothing read,
    /// when it is not that (no `{` first, no `}` last, no AVX2); otherwise true, and a body the C
    /// call gives up on or with a top-level `type` is handed to the scanner as `scan` would have
    /// it (the C call is not made twice).
    @inline(__always)
    private mutating func readDirect(_ bytes: UnsafeRawBufferPointer) -> Bool {
        #if arch(x86_64)
        guard readsDirect, directCPU, let base = bytes.baseAddress,
            collector.scanner.state == .value, collector.scanner.frameCount == 0
        else { return false }
        let n = bytes.count
        var brace = 0
        while brace < n, base.load(fromByteOffset: brace, as: UInt8.self) <= 0x20,
            UsageJSONScanner.isWhitespace(base.load(fromByteOffset: brace, as: UInt8.self))
        {
            brace &+= 1
        }
        guard brace < n, base.load(fromByteOffset: brace, as: UInt8.self) == UInt8(ascii: "{") else { return false }
        let last = UsageJSONScanner.lastNonWhitespace(base, n, from: brace &+ 1)
        guard last > brace, base.load(fromByteOffset: last, as: UInt8.self) == UInt8(ascii: "}") else { return false }
        // Not initialised: the read sets what it reports.
        return withUnsafeTemporaryAllocation(of: fluxgate_json_root.self, capacity: 1) { buffer -> Bool in
            let root = buffer.baseAddress!
            let end = fluxgate_json_root_read(base.assumingMemoryBound(to: UInt8.self), n, brace &+ 1, root)
            if end == last &+ 1, root.pointee.type_at < 0 {
                direct = true
                if root.pointee.model_at >= 0 {
                    collector.scanner.document.model.begin()
                    collector.scanner.document.model.append(
                        UnsafeRawBufferPointer(start: base + root.pointee.model_at, count: root.pointee.model_count))
                }
                directUsage = nil
                if root.pointee.written & 1 != 0 {
                    let found: UnsafePointer<fluxgate_usage_counts> = fluxgate_json_root_counts(root, 0)
                    if found.pointee.present != 0 { directUsage = UsageJSONScanner.normalized(found) }
                }
                return true
            }
            if end >= 0 { collector.scanner.keep(root, base) }
            collector.scanner.scan(bytes, brace: brace, readInC: end)
            return true
        }
        #else
        return false
        #endif
    }

    /// Decoded payload bytes.
    private mutating func read(_ bytes: UnsafeRawBufferPointer) {
        switch body {
        case .json: collector.scanner.scan(bytes)
        case .events: carry.split(bytes, with: &splitter, into: &collector)
        case .undecided: decide(bytes)
        case .inert: break
        }
    }

    private mutating func decide(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.firstIndex(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) else {
            collector.scanner.scan(bytes)  // white space: valid before a JSON value, ignored between events
            return
        }
        body = bytes[first] == UInt8(ascii: "{") || bytes[first] == UInt8(ascii: "[") ? .json : .events
        collector.scanner.countsDeltas = body == .events
        let rest = UnsafeRawBufferPointer(rebasing: bytes[first...])
        read(rest)
    }
}
