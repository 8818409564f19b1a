#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Writes a line whose fields are known in advance (the worker's `Request processed` line)
/// without swift-log's metadata: the line is built byte by byte in one buffer and written with
/// one `write(2)`, exactly as `FluxgateLogHandler` prints the same fields given as metadata
/// (the worker's RequestLineTests compare the two in every format). Through the metadata dictionary, its boxed
/// values, the ordering and `String` concatenation, a request line cost more instructions than
/// proxying the request it describes.
public struct RequestLineWriter: Sendable {
    let formatter: LogLineFormatter
    let fd: CInt
    /// Whether lines of `level` are printed at all (the handler's level).
    let level: Logger.Level

    init(formatter: LogLineFormatter, fd: CInt, level: Logger.Level) {
        self.formatter = formatter
        self.fd = fd
        self.level = level
    }

    public func isEnabled(_ level: Logger.Level) -> Bool { level >= self.level }

    /// Builds the line (fields in the order `fields` adds them) and writes it, when `level` is enabled.
    public func write(level: Logger.Level, message: StaticString, _ fields: (inout LogLineBuilder) -> Void) {
        guard isEnabled(level) else { return }
        // On the stack: a typical line never leaves it (a `malloc` and `free` per line cost ~170
        // instructions); a longer one moves to the heap.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: LogLineBuilder.stackBytes) { stack in
            var builder = LogLineBuilder(format: formatter.format, colour: formatter.colour, storage: stack)
            defer { builder.deallocate() }
            builder.start(level: level, message: message)
            fields(&builder)
            builder.finish()
            builder.withBytes { FluxgateLogHandler.writeAll(fd: fd, $0) }
        }
    }
}

extension FluxgateLogHandler {
    /// A writer printing to the same descriptor, in the same format, at the same level.
    public var requestLineWriter: RequestLineWriter {
        RequestLineWriter(formatter: formatter, fd: fd, level: logLevel)
    }
}

/// The fields of one line, appended as `LogLineFormatter` renders `.string` values and integers,
/// into one growable block of bytes (appends are a bounds check and a copy: an `Array` append
/// cost ten times that). Lives inside `RequestLineWriter.write` only, which frees it.
public struct LogLineBuilder {
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var count = 0
    private let format: LogSettings.Format
    private let colour: Bool
    /// `storage` was allocated here (the line outgrew the caller's buffer) and is freed here.
    private var ownsStorage = false

    /// Room on the stack for a line: a typical one (`LogLineFormatter.typicalLineBytes`) with
    /// room to spare.
    static let stackBytes = 512

    /// A line written into `storage` (the caller's, which outlives the builder) until it is full.
    fileprivate init(format: LogSettings.Format, colour: Bool, storage: UnsafeMutableBufferPointer<UInt8>) {
        self.format = format
        self.colour = colour
        self.storage = storage.baseAddress!
        capacity = storage.count
    }

    fileprivate func deallocate() {
        if ownsStorage { storage.deallocate() }
    }

    fileprivate func withBytes(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        body(UnsafeBufferPointer(start: storage, count: count))
    }

    /// The line's start, with the current time written in place (`FluxgateLogHandler.timestamp()`'s
    /// text, without making a `String` of it).
    fileprivate mutating func start(level: Logger.Level, message: StaticString) {
        switch format {
        case .text:
            if colour {
                append("\u{1B}[2m"); appendTimestamp(); append("\u{1B}[0m "); append(string: LogLineFormatter.ansi(level))
                appendPaddedLevel(level); append("\u{1B}[0m ")
            } else {
                appendTimestamp(); appendByte(UInt8(ascii: " ")); appendPaddedLevel(level); appendByte(UInt8(ascii: " "))
            }
            append(message)
        case .json:
            // A timestamp has no byte JSON escapes: quoted as it is.
            append("{\"timestamp\":\""); appendTimestamp(); append("\"")
            append(",\"level\":\""); append(LogLineFormatter.levelText(level)); append("\"")
            append(",\"message\":"); appendJSONString(message.description)
        }
    }

    fileprivate mutating func finish() {
        append(format == .json ? "}\n" : "\n")
    }

    public mutating func add(_ key: StaticString, _ value: String) {
        // Read in place (a copy made for `withUTF8` retained and released the string).
        let done: Void? = value.utf8.withContiguousStorageIfAvailable { add(key, text: UnsafeRawBufferPointer($0)) }
        if done == nil {
            var value = value
            value.withUTF8 { add(key, text: UnsafeRawBufferPointer($0)) }
        }
    }

    /// A string value given as its UTF-8 bytes (a URL read where it was received: no `String`
    /// is made of it), printed exactly as `add(_:_:)` prints the same string.
    public mutating func add(_ key: StaticString, text bytes: UnsafeRawBufferPointer) {
        self.key(key)
        // One look at the bytes decides and copies: bare (text) or plain (JSON) values, the usual
        // case, go in as they are; the rest through `JSONText.quoted`, as the handler does.
        let utf8 = bytes.assumingMemoryBound(to: UInt8.self)
        switch format {
        case .text where !utf8.isEmpty && Self.allBare(utf8):
            append(utf8.baseAddress, utf8.count)
        case .json where utf8.allSatisfy(JSONText.isPlain):
            reserve(utf8.count + 2)
            appendByte(UInt8(ascii: "\""))
            append(utf8.baseAddress, utf8.count)
            appendByte(UInt8(ascii: "\""))
        case .text, .json:
            append(string: LogLineFormatter.quoted(String(decoding: utf8, as: UTF8.self)))
        }
    }

    /// A value whose bytes are known to be bare and JSON-plain (`LogLineFormatter.isBareByte`,
    /// `JSONText.isPlain`: a request id the proxy made, a method the parser read), copied
    /// without looking at them; printed exactly as `add(_:text:)` prints the same bytes.
    public mutating func add(_ key: StaticString, bare bytes: UnsafeRawBufferPointer) {
        self.key(key)
        let utf8 = bytes.assumingMemoryBound(to: UInt8.self)
        switch format {
        case .text:
            append(utf8.baseAddress, utf8.count)
        case .json:
            reserve(utf8.count &+ 2)
            appendByte(UInt8(ascii: "\""))
            append(utf8.baseAddress, utf8.count)
            appendByte(UInt8(ascii: "\""))
        }
    }

    /// Every byte is `LogLineFormatter.isBareByte` (printable ASCII, no space, quote or
    /// backslash): eight at a time, then the rest one by one. Each test below answers exactly
    /// whether some byte of the word is in its set.
    static func allBare(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high = 0x80 &* ones
        @inline(__always) func hasZeroByte(_ x: UInt64) -> Bool { (x &- ones) & ~x & high != 0 }
        @inline(__always) func bare(_ w: UInt64) -> Bool {
            if w & high != 0 { return false }  // >= 0x80
            if (w &+ ones) & high != 0 { return false }  // 0x7F
            if (w &- 0x21 &* ones) & ~w & high != 0 { return false }  // <= 0x20
            return !hasZeroByte(w ^ (0x22 &* ones)) && !hasZeroByte(w ^ (0x5C &* ones))  // " or \
        }
        var i = 0
        if let base = UnsafeRawPointer(bytes.baseAddress), bytes.count >= 8 {
            while i &+ 8 <= bytes.count {
                guard bare(base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) else { return false }
                i &+= 8
            }
            // The rest as the last eight bytes, overlapping the word before (a byte loop cost ~10 a byte).
            return i == bytes.count || bare(base.loadUnaligned(fromByteOffset: bytes.count &- 8, as: UInt64.self))
        }
        while i < bytes.count {
            guard LogLineFormatter.isBareByte(bytes[i]) else { return false }
            i &+= 1
        }
        return true
    }

    public mutating func add(_ key: StaticString, _ value: Int64) {
        self.key(key)
        if value < 0 { append("-") }
        appendDigits(value.magnitude)
    }

    /// Inlined into each `add`: the call cost about as much as the copying.
    @inline(__always)
    private mutating func key(_ key: StaticString) {
        switch format {
        case .text where !colour:
            // One room check for the three pieces (each append checked its own: ~110 instructions a key).
            let n = key.utf8CodeUnitCount
            reserve(n &+ 2)
            storage[count] = UInt8(ascii: " ")
            count &+= 1
            append(key.utf8Start, n)
            storage[count] = UInt8(ascii: "=")
            count &+= 1
        case .text:
            append(" \u{1B}[3m"); append(key); append("\u{1B}[0m=")
        case .json:
            append(","); appendJSONString(key.description); append(":")
        }
    }

    /// The digits counted first, then written from the last, two a step from a table of the
    /// pairs "00" to "99" (one a step, a division each, cost ~68 instructions for three digits;
    /// backwards and reversed, twice that).
    private mutating func appendDigits(_ value: UInt64) {
        reserve(20)
        var digits = 1
        var power: UInt64 = 10
        while digits < 20 && value >= power {
            digits &+= 1
            power = power &* 10
        }
        let pairs = Self.digitPairs.utf8Start
        var rest = value
        var at = count &+ digits
        while rest >= 100 {
            let pair = Int(truncatingIfNeeded: rest % 100) &* 2
            rest /= 100
            at &-= 2
            storage[at] = pairs[pair]
            storage[at &+ 1] = pairs[pair &+ 1]
        }
        if rest >= 10 {
            let pair = Int(truncatingIfNeeded: rest) &* 2
            storage[at &- 2] = pairs[pair]
            storage[at &- 1] = pairs[pair &+ 1]
        } else {
            storage[at &- 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest)
        }
        count &+= digits
    }

    private static let digitPairs: StaticString = """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """

    /// `JSONText.quoted`, whose output is the string's own bytes in quotes unless it has a quote,
    /// a backslash or a control character.
    private mutating func appendJSONString(_ s: String) {
        var s = s
        let plain = s.withUTF8 { $0.allSatisfy(JSONText.isPlain) }
        if plain {
            append("\"")
            append(string: s)
            append("\"")
        } else {
            append(string: JSONText.quoted(s))
        }
    }

    /// (Not `append(_:)`: a string literal would pick it over the `StaticString` one, and
    /// each such call retained, copied and released a `String`.)
    private mutating func append(string s: String) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { append($0.baseAddress, $0.count) }
        if done == nil {
            var s = s
            s.withUTF8 { append($0.baseAddress, $0.count) }
        }
    }

    /// `LogLineFormatter.levelName`, padded on the left to five bytes as the text format prints it.
    private mutating func appendPaddedLevel(_ level: Logger.Level) {
        let name = LogLineFormatter.levelText(level)
        if name.utf8CodeUnitCount < 5 { appendByte(UInt8(ascii: " ")) }
        append(name)
    }

    @inline(__always)
    private mutating func append(_ s: StaticString) { append(s.utf8Start, s.utf8CodeUnitCount) }

    private mutating func appendTimestamp() {
        reserve(FluxgateLogHandler.timestampBytes)
        count += FluxgateLogHandler.writeTimestamp(into: storage + count)
    }

    @inline(__always)
    private mutating func append(_ bytes: UnsafePointer<UInt8>?, _ n: Int) {
        guard n > 0, let bytes else { return }
        reserve(n)
        let to = UnsafeMutableRawPointer(storage + count)
        let from = UnsafeRawPointer(bytes)
        if n >= 8 && n <= 32 {
            // Keys and most values are short: eight bytes a step, the last step overlapping the
            // one before, cost less than calling memmove (and a byte loop cost ~4 a byte).
            var i = 0
            while i &+ 8 < n {
                to.storeBytes(of: from.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
                i &+= 8
            }
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self), toByteOffset: n &- 8, as: UInt64.self)
        } else if n >= 4 && n < 8 {
            to.storeBytes(of: from.loadUnaligned(as: UInt32.self), as: UInt32.self)
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self), toByteOffset: n &- 4, as: UInt32.self)
        } else if n < 4 {
            for i in 0..<n { storage[count &+ i] = bytes[i] }
        } else {
            (storage + count).update(from: bytes, count: n)
        }
        count += n
    }

    /// One byte.
    @inline(__always)
    private mutating func appendByte(_ byte: UInt8) {
        reserve(1)
        storage[count] = byte
        count += 1
    }

    /// Inlined: every append checks the room (a call each cost more than the copying); growing,
    /// which a typical line never needs, is out of line.
    @inline(__always)
    private mutating func reserve(_ n: Int) {
        if count + n > capacity { grow(n) }
    }

    @inline(never)
    private mutating func grow(_ n: Int) {
        let grown = max(capacity * 2, count + n)
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        bigger.update(from: storage, count: count)
        if ownsStorage { storage.deallocate() }
        storage = bigger
        capacity = grown
        ownsStorage = true
    }
}
