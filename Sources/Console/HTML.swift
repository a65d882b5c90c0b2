import Reports
import SystemSupport

/// Text from the log (hosts, URLs, users, search terms, notes) made safe for a page: control
/// characters and bidirectional overrides shown as visible escapes (as the tool shows them at
/// a terminal), then HTML's five special characters as entities. Every value a page shows
/// passes through here; attribute values are always quoted.
public enum HTML {
    public static func escape(_ s: String) -> String { Report.escape(s) }

    /// Text of several lines (esafetyd's status) for a `<pre>`: each line escaped, the line
    /// breaks kept.
    public static func escapeLines(_ s: String) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: false).map { escape(String($0)) }.joined(separator: "\n")
    }

    /// A value for a URL's query, percent-encoded (only unreserved characters pass).
    public static func query(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// `application/x-www-form-urlencoded` (a form's body or a query) into its fields; a name
    /// given twice keeps its first value. Malformed escapes are kept as written.
    public static func form(_ bytes: some Collection<UInt8>) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in bytes.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(parts[0])
            let value = parts.count > 1 ? decode(parts[1]) : ""
            if fields[name] == nil { fields[name] = value }
        }
        return fields
    }

    static func decode(_ part: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(part.count)
        var i = part.startIndex
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while i != part.endIndex {
            let b = part[i]
            if b == UInt8(ascii: "+") {
                out.append(0x20)
            } else if b == UInt8(ascii: "%"), part.distance(from: i, to: part.endIndex) >= 3,
                let hi = hex(part[part.index(after: i)]), let lo = hex(part[part.index(i, offsetBy: 2)])
            {
                out.append(hi << 4 | lo)
                i = part.index(i, offsetBy: 2)
            } else {
                out.append(b)
            }
            i = part.index(after: i)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
