// The JSON scanner's numbers (a token count is a plain integer of at most 15 digits) and literals.

extension UsageJSONScanner {
    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
    struct NumberState {
        enum Phase: UInt8 { case sign, zero, integer, point, fraction, exponentMark, exponentSign, exponent }
        var phase = Phase.sign
        var value = 0
        var digits = 0
        /// A plain non-negative integer so far: the only form a token count takes.
        var isCount = true

        var isComplete: Bool { phase == .zero || phase == .integer || phase == .fraction || phase == .exponent }
    }

    /// A run of digits after the first byte of an integer part (most numbers are only that).
    mutating func scanDigits(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard number.phase == .integer else { return start }
        var i = start
        var value = number.value
        var digits = number.digits
        while i < bytes.count {
            let digit = bytes[i] &- UInt8(ascii: "0")
            guard digit <= 9 else { break }
            value = value &* 10 &+ Int(digit)
            digits &+= 1
            i &+= 1
        }
        if digits > 15 { number.isCount = false }  // also keeps `value` from overflowing below
        if number.isCount {
            number.value = value
            number.digits = digits
        }
        return i
    }

    mutating func numberByte(_ b: UInt8) {
        let digit = b &- UInt8(ascii: "0")
        if digit <= 9 {
            switch number.phase {
            case .sign: number.phase = digit == 0 ? .zero : .integer
            case .zero: state = .failed; return
            case .integer: break
            case .point, .fraction: number.phase = .fraction; number.isCount = false
            case .exponentMark, .exponentSign, .exponent: number.phase = .exponent
            }
            if number.isCount {
                number.value = number.value &* 10 &+ Int(digit)
                number.digits &+= 1
                if number.digits > 15 { number.isCount = false }
            }
            return
        }
        switch b {
        case UInt8(ascii: "-") where number.phase == .sign && number.digits == 0 && number.isCount:
            number.isCount = false  // negative: valid JSON, never a count
            return
        case UInt8(ascii: "."):
            guard number.phase == .zero || number.phase == .integer else { state = .failed; return }
            number.phase = .point
            number.isCount = false
            return
        case UInt8(ascii: "e"), UInt8(ascii: "E"):
            guard number.phase == .zero || number.phase == .integer || number.phase == .fraction else {
                state = .failed; return
            }
            number.phase = .exponentMark
            number.isCount = false
            return
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard number.phase == .exponentMark else { state = .failed; return }
            number.phase = .exponentSign
            return
        default:
            guard number.isComplete else { state = .failed; return }
            if let (location, field) = countField, number.isCount { document.set(field, at: location, to: number.value) }
            valueEnded()
            step(b)  // the byte after the number belongs to what follows it
        }
    }

    mutating func beginLiteral(_ word: StaticString) {
        literal = word
        literalIndex = 1
        state = .literal
    }

    mutating func literalByte(_ b: UInt8) {
        let expected = literal.withUTF8Buffer { $0[literalIndex] }
        guard b == expected else { state = .failed; return }
        literalIndex &+= 1
        if literalIndex == literal.utf8CodeUnitCount { valueEnded() }
    }
}
