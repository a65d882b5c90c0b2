import Glibc

/// What readers take from a log line without decoding it: esafety writes every event line
/// with `event`, then `id`, then `time` first (`{"event":"NAME","id":"ID","time":"T",...`,
/// the fixed key order of its records), so these are found by position. Nil for any other
/// shape: the caller then decodes the line whole (`LogRecord(line:)`).
public enum LogLine {
    /// `event` and `id` of a line as esafety writes them; the id is empty when the line has none.
    /// Found in the bytes (a JSON quote is one byte), not by characters: every forwarded and
    /// indexed line passes here, and Character's grapheme breaking made it a twelfth of the
    /// forwarder's CPU.
    public static func head(_ line: String) -> (event: Substring, id: Substring)? {
        let u = line.utf8
        let prefix = #"{"event":""#.utf8
        guard u.starts(with: prefix) else { return nil }
        let start = u.index(u.startIndex, offsetBy: prefix.count)
        guard let q = u[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        let event = Substring(u[start..<q])
        let key = #"","id":""#.utf8
        guard u[q...].starts(with: key) else { return (event, "") }
        let idStart = u.index(q, offsetBy: key.count)
        guard let e = u[idStart...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return (event, Substring(u[idStart..<e]))
    }

    /// The `time` of esafety's event lines (nil when there is none).
    public static func time(_ line: String) -> String? {
        var line = line
        return line.withUTF8 { b -> String? in
            // The first `"time":"` key: the top-level one, which esafety writes before any
            // nested object (a context line's requests have times of their own).
            guard let start = find("\"time\":\"", in: b, from: 0),
                let end = b[start...].firstIndex(of: UInt8(ascii: "\""))
            else { return nil }
            return String(decoding: b[start..<end], as: UTF8.self)
        }
    }

    /// A context line's `ids` (`"ids":["A","B",...]`, written when it names more than one
    /// incident), read without decoding the line: `[]` when the line has no `ids` key, nil
    /// when the array holds anything but plain strings (the caller then decodes it whole).
    public static func ids(_ line: String) -> [String]? {
        var line = line
        return line.withUTF8 { b -> [String]? in
            guard var i = find("\"ids\":[", in: b, from: 0) else { return [] }
            var ids: [String] = []
            while i < b.count {
                switch b[i] {
                case UInt8(ascii: "]"): return ids.isEmpty ? nil : ids
                case UInt8(ascii: ","): i += 1
                case UInt8(ascii: "\""):
                    let start = i + 1
                    guard let end = b[start...].firstIndex(where: { $0 == 0x22 || $0 == 0x5C }), b[end] == 0x22 else {
                        return nil
                    }
                    ids.append(String(decoding: b[start..<end], as: UTF8.self))
                    i = end + 1
                default: return nil
                }
            }
            return nil
        }
    }

    /// The offset just past the first `needle` in `b` at or after `from`.
    static func find(_ needle: StaticString, in b: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        let n = UnsafeBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount)
        guard let first = n.first, let base = b.baseAddress, from >= 0, n.count <= b.count else { return nil }
        let last = b.count - n.count
        var i = from
        while i <= last {
            guard let j = b[i...last].firstIndex(of: first) else { return nil }
            if memcmp(base + j, n.baseAddress!, n.count) == 0 { return j + n.count }
            i = j + 1
        }
        return nil
    }
}
