import Incidents

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

    /// A JSON text for a `jsonb`: each `\u0000` escape as `\u2400` (an escape of the same
    /// length), and not the six characters of an escaped backslash followed by `u0000`. A text
    /// without one (every line esafetyd writes) is returned as it is, read once, not copied.
    public static func json(_ text: String) -> String {
        var text = text
        return text.withUTF8 { bytes -> String? in
            // Walked escape by escape: a backslash and the byte after it are one unit.
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

    /// An incident's columns, each storable.
    static func fields(_ f: IncidentFields) -> IncidentFields {
        var f = f
        (f.id, f.time, f.severity, f.category, f.group) = (
            column(f.id), column(f.time), column(f.severity), column(f.category), column(f.group)
        )
        (f.client, f.user, f.host, f.due) = (column(f.client), column(f.user), column(f.host), column(f.due))
        (f.url, f.searchTerm) = (column(f.url), column(f.searchTerm))
        return f
    }
}
