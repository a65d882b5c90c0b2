import Glibc
import Incidents
import LogFormats

/// What PostgreSQL cannot hold, made storable. Its `text`, and so every string in a `jsonb`,
/// has no NUL character, and a value with one is refused with the whole statement: one NUL
/// in a school's log (a user name from a proxy's log, a note typed in the console, where a
/// form's `%00` is a NUL) would stop that site's forwarding for ever. The central copy holds
/// each NUL as ␀ (U+2400, SYMBOL FOR NULL), visible and not part of any word; everything
/// else is the school's own. The line's chain value is the school's, checked on its own bytes.
public enum StoredText {
    public static let nul: Character = "\u{2400}"

    /// A value for a column.
    public static func column(_ s: String) -> String {
        s.utf8.contains(0) ? String(s.map { $0 == "\u{0}" ? nul : $0 }) : s
    }

    public static func column(_ s: String?) -> String? { s.map(column) }

    /// The longest value kept whole in a column an index compares (an id, a time, a person, a
    /// severity, a due time). PostgreSQL refuses a B-tree entry over about 2,700 bytes with the
    /// whole statement: one user name of 12,000 characters from a proxy's log (or a line edited
    /// into a site's log) stopped that site's forwarding for ever. Such a value is kept to its
    /// first bytes and an ellipsis (…) in the column; the line and the incident's record hold it
    /// whole. No identifier esafetyd writes comes near it (a user name is at most a few hundred).
    public static let longestKey = 512

    /// A value for a column an index compares: `column(s)`, and at most `longestKey` bytes, a
    /// longer one cut at a character and ended with "…" (the cut is seen, never passed off as
    /// the whole).
    public static func key(_ s: String) -> String {
        let s = column(s)
        let bytes = s.utf8
        guard bytes.count > longestKey else { return s }
        // Room for the ellipsis (3 bytes), back to the start of a character (not a continuation byte).
        var end = bytes.index(bytes.startIndex, offsetBy: longestKey - 3)
        while end > bytes.startIndex, bytes[end] & 0xC0 == 0x80 { end = bytes.index(before: end) }
        return String(decoding: bytes[..<end], as: UTF8.self) + "…"
    }

    public static func key(_ s: String?) -> String? { s.map(key) }

    /// A JSON text for a `jsonb`: each `\u0000` escape as `\u2400` (an escape of the same
    /// length), and not the six characters of an escaped backslash followed by `u0000`. A text
    /// without one (every line esafetyd writes) is returned as it is, read once, not copied.
    public static func json(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes -> String? in
            // Walked escape by escape: a backslash and the byte after it are one unit. First from
            // backslash to backslash (memchr), as most lines have none to change.
            guard let base = bytes.baseAddress else { return nil }
            var at = 0
            var found = false
            while at < bytes.count, let p = memchr(base + at, 0x5C, bytes.count - at) {
                let j = UnsafePointer<UInt8>(p.assumingMemoryBound(to: UInt8.self)) - base
                if j + 6 <= bytes.count, bytes[j + 1] == UInt8(ascii: "u"),
                    bytes[(j + 2)..<(j + 6)].elementsEqual("0000".utf8)
                {
                    found = true
                    break
                }
                at = j + 2
            }
            guard found else { return nil }
            var out: [UInt8]?
            var i = 0
            while i < bytes.count {
                guard bytes[i] == UInt8(ascii: "\\"), i + 1 < bytes.count else {
                    out?.append(bytes[i])
                    i += 1
                    continue
                }
                if i + 6 <= bytes.count, bytes[i + 1] == UInt8(ascii: "u"),
                    bytes[(i + 2)..<(i + 6)].elementsEqual("0000".utf8)
                {
                    if out == nil { out = Array(bytes[..<i]) }
                    out!.append(contentsOf: "\\u2400".utf8)
                    i += 6
                } else {
                    out?.append(contentsOf: bytes[i..<(i + 2)])
                    i += 2
                }
            }
            return out.map { String(decoding: $0, as: UTF8.self) }
        } ?? text
    }

    /// Why PostgreSQL's jsonb would refuse this JSON text, when it would for what a JSON
    /// parser elsewhere takes: a `\u` escape of half a surrogate pair; a number jsonb's numeric
    /// may not hold (`1e-999999` and a fraction of 17,000 digits are refused, where a Double
    /// rounds them to 0), told safely: an exponent over 1,000 or a run of over 16,000 digits
    /// (numeric holds 16,383 after the point, 131,072 before, so some numbers PostgreSQL would
    /// take are kept as text too); or arrays and objects nested deeper than 1,000 (its stack's
    /// limit is further). esafetyd writes no exponent and none of these; a line edited into a
    /// log may hold any. One pass over the bytes, strings' contents passed over but for their
    /// escapes.
    public static func refusedByJSONB(_ text: String) -> String? {
        var text = text
        return text.withUTF8 { b -> String? in
            func hex4(_ at: Int) -> Int? { at + 4 <= b.count ? JSONEscape.hex4(UnsafeRawBufferPointer(b), at) : nil }
            func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
            let (quote, backslash) = (UInt8(ascii: "\""), UInt8(ascii: "\\"))
            var (i, depth, digits, inString) = (0, 0, 0, false)
            while i < b.count {
                let c = b[i]
                if inString {
                    // A string's own bytes, passed over to its end or its next escape.
                    if c != quote && c != backslash {
                        i += 1
                        while i < b.count && b[i] != quote && b[i] != backslash { i += 1 }
                        continue
                    }
                    if c == quote {
                        inString = false
                    } else if c == backslash {
                        guard i + 1 < b.count, b[i + 1] == UInt8(ascii: "u"), let v = hex4(i + 2) else {
                            i += 2
                            continue
                        }
                        if (0xD800...0xDBFF).contains(v) {
                            guard i + 7 < b.count, b[i + 6] == backslash, b[i + 7] == UInt8(ascii: "u"),
                                let w = hex4(i + 8), (0xDC00...0xDFFF).contains(w)
                            else { return "a \\u escape of half a surrogate pair" }
                            i += 12
                            continue
                        }
                        if (0xDC00...0xDFFF).contains(v) { return "a \\u escape of half a surrogate pair" }
                        i += 6
                        continue
                    }
                    i += 1
                    continue
                }
                digits = isDigit(c) ? digits + 1 : 0
                if digits > 16_000 { return "a number beyond PostgreSQL's numeric range" }
                switch c {
                case quote: inString = true
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    if depth > 1000 { return "arrays or objects nested more than 1,000 deep" }
                case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
                // (A `where` after two patterns would hold for the last one only.)
                case UInt8(ascii: "e") where i > 0 && isDigit(b[i - 1]),
                    UInt8(ascii: "E") where i > 0 && isDigit(b[i - 1]):
                    var j = i + 1
                    if j < b.count && (b[j] == UInt8(ascii: "+") || b[j] == UInt8(ascii: "-")) { j += 1 }
                    var exponent = 0
                    while j < b.count && isDigit(b[j]) {
                        exponent = min(exponent * 10 + Int(b[j] - 0x30), 1_000_000)
                        j += 1
                    }
                    if exponent > 1000 { return "a number beyond PostgreSQL's numeric range" }
                    i = j
                    continue
                default: break
                }
                i += 1
            }
            return nil
        }
    }

    /// An incident's columns, each storable, those an index compares bounded.
    static func fields(_ f: IncidentFields) -> IncidentFields {
        var f = f
        (f.id, f.time, f.severity, f.category, f.group) = (
            key(f.id), key(f.time), key(f.severity), column(f.category), column(f.group)
        )
        // The person (the user, else the client) is a key too: a pupil's history is found by it.
        (f.client, f.user, f.host, f.due) = (key(f.client), key(f.user), column(f.host), key(f.due))
        (f.url, f.searchTerm) = (column(f.url), column(f.searchTerm))
        return f
    }
}
