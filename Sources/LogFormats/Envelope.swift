/// Syslog envelopes around a log message: RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID
/// MSGID SD MSG`), RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`), files written by
/// rsyslog (the same without `<PRI>`, or with an RFC 3339 timestamp), and Pi-hole's log
/// (`Mmm dd hh:mm:ss dnsmasq[pid]: MSG`, no host). A line without an envelope passes as it is.
public enum Envelope {
    public struct Stripped {
        /// Index where the message starts.
        public var message: Int
        /// The envelope's timestamp, when it has one.
        public var time: Double?
        /// The tag (`dnsmasq[123]`, `named`), without the colon.
        var tag: Range<Int>?
    }

    static func strip(_ b: UnsafeRawBufferPointer, time clock: LogTime) -> Stripped {
        var i = 0
        var pri = false
        if b.count > 3, b[0] == UInt8(ascii: "<") {
            var j = 1
            while j < b.count, j < 5, b[j] >= 0x30, b[j] <= 0x39 { j += 1 }
            if j > 1, j < b.count, b[j] == UInt8(ascii: ">") {
                i = j + 1
                pri = true
            }
        }
        if pri, i + 1 < b.count, b[i] == UInt8(ascii: "1"), b[i + 1] == 0x20 {
            return rfc5424(b, from: i + 2, clock: clock)
        }
        var time: Double? = nil
        if let (t, j) = clock.syslog(b, at: i) {
            time = t
            i = j
        } else if let (t, j) = clock.rfc3339(b, at: i), j < b.count, b[j] == 0x20 {
            time = t
            i = j
        } else if !pri {
            // No timestamp: maybe a bare "tag[pid]: message".
            if let (tag, next) = tagToken(b, i) { return Stripped(message: next, time: nil, tag: tag) }
            return Stripped(message: i, time: nil, tag: nil)
        }
        while i < b.count, b[i] == 0x20 { i += 1 }
        // "TAG: msg" or "HOST TAG: msg".
        if let (tag, next) = tagToken(b, i) { return Stripped(message: next, time: time, tag: tag) }
        var j = i
        while j < b.count, b[j] != 0x20 { j += 1 }
        while j < b.count, b[j] == 0x20 { j += 1 }
        if let (tag, next) = tagToken(b, j) { return Stripped(message: next, time: time, tag: tag) }
        return Stripped(message: i, time: time, tag: nil)
    }

    /// A token ending in `:` that looks like a program tag (`dnsmasq[12]:`, `named:`,
    /// `(squid-1)[6802]:`): the tag's range and where the message starts.
    static func tagToken(_ b: UnsafeRawBufferPointer, _ start: Int) -> (Range<Int>, Int)? {
        var j = start
        while j < b.count, j - start < 64 {
            let c = b[j]
            if c == UInt8(ascii: ":") {
                guard j > start, j + 1 >= b.count || b[j + 1] == 0x20 else { return nil }
                var m = j + 1
                while m < b.count, b[m] == 0x20 { m += 1 }
                // Leave "queries:", "info:" and "client" to the BIND and unbound parsers.
                let tag = UnsafeRawBufferPointer(rebasing: b[start..<j])
                if equals(tag, "queries") || equals(tag, "info") || equals(tag, "notice") || equals(tag, "error") {
                    return nil
                }
                return (start..<j, m)
            }
            let ok =
                (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "/")
                || c == UInt8(ascii: "[") || c == UInt8(ascii: "]") || c == UInt8(ascii: "(") || c == UInt8(ascii: ")")
            if !ok { return nil }
            if j == start && (c == UInt8(ascii: "[") || (c >= 0x30 && c <= 0x39)) { return nil }
            j += 1
        }
        return nil
    }

    static func rfc5424(_ b: UnsafeRawBufferPointer, from start: Int, clock: LogTime) -> Stripped {
        var tokens = Tokens(b, start)
        var time: Double? = nil
        guard let ts = tokens.next() else { return Stripped(message: b.count, time: nil, tag: nil) }
        if let (t, _) = clock.rfc3339(b, at: ts.lowerBound) { time = t }
        _ = tokens.next()  // host
        let app = tokens.next()
        _ = tokens.next()  // procid
        _ = tokens.next()  // msgid
        var i = tokens.position
        // Structured data: "-" or one or more [id k="v"...] elements.
        if i < b.count, b[i] == UInt8(ascii: "-") {
            i += 1
        } else {
            while i < b.count, b[i] == UInt8(ascii: "[") {
                var inQuote = false
                i += 1
                while i < b.count {
                    let c = b[i]
                    if c == UInt8(ascii: "\\") {
                        i += 2
                        continue
                    }
                    if c == UInt8(ascii: "\"") {
                        inQuote.toggle()
                    } else if c == UInt8(ascii: "]") && !inQuote {
                        i += 1
                        break
                    }
                    i += 1
                }
            }
        }
        while i < b.count, b[i] == 0x20 { i += 1 }
        if i + 3 <= b.count, b[i] == 0xEF, b[i + 1] == 0xBB, b[i + 2] == 0xBF { i += 3 }
        return Stripped(message: i, time: time, tag: app)
    }
}

/// A forward-only scanner for one flat JSON object.
struct JSONScanner {
    let b: UnsafeRawBufferPointer
    var i: Int

    init(_ b: UnsafeRawBufferPointer, _ start: Int) {
        self.b = b
        self.i = start
    }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
    }

    mutating func peek() -> UInt8? {
        skipSpace()
        return i < b.count ? b[i] : nil
    }

    mutating func expect(_ c: UInt8) -> Bool {
        skipSpace()
        guard i < b.count, b[i] == c else { return false }
        i += 1
        return true
    }

    /// A string's bytes. Without escapes, a slice of the line; with escapes, decoded into
    /// `arena` (nil: escapes refused, for keys).
    mutating func string(arena: UnsafeMutableRawBufferPointer?, used: inout Int) -> UnsafeRawBufferPointer? {
        guard expect(UInt8(ascii: "\"")) else { return nil }
        let start = i
        var escaped = false
        while i < b.count, b[i] != UInt8(ascii: "\"") {
            if b[i] == UInt8(ascii: "\\") {
                escaped = true
                i += 1
            }
            i += 1
        }
        guard i < b.count else { return nil }
        let end = i
        i += 1
        if !escaped { return UnsafeRawBufferPointer(rebasing: b[start..<end]) }
        guard let arena else { return nil }
        let outStart = used
        var k = start
        func put(_ c: UInt8) -> Bool {
            guard used < arena.count else { return false }
            arena[used] = c
            used += 1
            return true
        }
        while k < end {
            var c = b[k]
            if c == UInt8(ascii: "\\") {
                k += 1
                guard k < end else { return nil }
                switch b[k] {
                case UInt8(ascii: "n"): c = 0x0A
                case UInt8(ascii: "t"): c = 0x09
                case UInt8(ascii: "r"): c = 0x0D
                case UInt8(ascii: "b"): c = 0x08
                case UInt8(ascii: "f"): c = 0x0C
                case UInt8(ascii: "u"):
                    guard k + 4 < end, let v = hex4(k + 1) else { return nil }
                    k += 5
                    // UTF-8 encode the BMP code point (surrogates become U+FFFD).
                    let scalar = (0xD800...0xDFFF).contains(v) ? 0xFFFD : v
                    var out = [UInt8]()
                    out.reserveCapacity(3)
                    if scalar < 0x80 {
                        out = [UInt8(scalar)]
                    } else if scalar < 0x800 {
                        out = [UInt8(0xC0 | (scalar >> 6)), UInt8(0x80 | (scalar & 0x3F))]
                    } else {
                        out = [
                            UInt8(0xE0 | (scalar >> 12)), UInt8(0x80 | ((scalar >> 6) & 0x3F)),
                            UInt8(0x80 | (scalar & 0x3F)),
                        ]
                    }
                    for o in out { guard put(o) else { return nil } }
                    continue
                default: c = b[k]
                }
            }
            guard put(c) else { return nil }
            k += 1
        }
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(arena)[outStart..<used])
    }

    func hex4(_ at: Int) -> Int? { JSONEscape.hex4(b, at) }

    /// A number, `true`, `false` or `null`; nested objects and arrays are skipped whole.
    mutating func scalar() -> UnsafeRawBufferPointer? {
        skipSpace()
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "{") || b[i] == UInt8(ascii: "[") {
            var depth = 0
            var inString = false
            let start = i
            while i < b.count {
                let c = b[i]
                if inString {
                    if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { inString = false }
                } else if c == UInt8(ascii: "\"") {
                    inString = true
                } else if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                    depth += 1
                } else if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 {
                        i += 1
                        return UnsafeRawBufferPointer(rebasing: b[start..<i])
                    }
                }
                i += 1
            }
            return nil
        }
        let start = i
        while i < b.count, b[i] != UInt8(ascii: ","), b[i] != UInt8(ascii: "}"), b[i] != 0x20 { i += 1 }
        return i > start ? UnsafeRawBufferPointer(rebasing: b[start..<i]) : nil
    }
}

/// JSON's `\u` escapes, read from bytes.
public enum JSONEscape {
    /// The value of the four hex digits at `at` (a `\u` escape's), nil when they are not;
    /// `at + 4` must be within `b`.
    @inlinable
    public static func hex4(_ b: UnsafeRawBufferPointer, _ at: Int) -> Int? {
        var v = 0
        for k in at..<(at + 4) {
            let c = b[k] | 0x20
            if c >= 0x30 && c <= 0x39 {
                v = v * 16 + Int(c - 0x30)
            } else if c >= 0x61 && c <= 0x66 {
                v = v * 16 + Int(c - 0x61 + 10)
            } else {
                return nil
            }
        }
        return v
    }
}
