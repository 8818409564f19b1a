/// A model name or pattern of the configuration (docs/routing-and-forwarding.md "Model
/// routing"): `*` matches any run of characters, possibly empty; every other character matches
/// itself. Compared on UTF-8 bytes, case-sensitively.
struct ModelPattern: Sendable, Equatable {
    /// The pieces between the `*`s: `ft:*:x` is `["ft:", ":x"]`, `a*` is `["a", ""]`.
    private let pieces: [[UInt8]]
    let text: String

    init(_ text: String) {
        self.text = text
        self.pieces = text.utf8.split(separator: UInt8(ascii: "*"), omittingEmptySubsequences: false).map(Array.init)
    }

    var isPattern: Bool { pieces.count > 1 }

    func matches(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { matches(UnsafeRawBufferPointer($0)) }
    }

    /// The first piece anchors at the start, the last at the end, the middle ones are found
    /// left to right (taking each at its first place is never worse for the pieces after it).
    func matches(_ name: UnsafeRawBufferPointer) -> Bool {
        guard let first = pieces.first, let last = pieces.last else { return false }
        if pieces.count == 1 { return name.elementsEqual(first) }
        guard name.count >= first.count + last.count, name.starts(with: first),
            name[(name.count - last.count)...].elementsEqual(last)
        else { return false }
        var from = first.count
        let end = name.count - last.count
        for piece in pieces.dropFirst().dropLast() {
            guard let at = Self.find(piece, in: name, from: from, to: end) else { return false }
            from = at + piece.count
        }
        return true
    }

    private static func find(_ piece: [UInt8], in name: UnsafeRawBufferPointer, from: Int, to end: Int) -> Int? {
        guard !piece.isEmpty else { return from }
        var start = from
        while start + piece.count <= end {
            if name[start..<(start + piece.count)].elementsEqual(piece) { return start }
            start += 1
        }
        return nil
    }
}
