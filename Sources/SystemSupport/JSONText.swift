/// Minimal JSON writing with a fixed key order, for JSON Lines output. Strings are
/// escaped per RFC 8259, and every control character is written as `\uXXXX`, so a
/// record never carries a raw control character.
public struct JSONText {
    /// The UTF-8 being written; `text` decodes it once at the end.
    public private(set) var bytes: [UInt8] = []
    /// Per open object or array (bit `depth - 1`): whether the next value needs a comma.
    /// Nesting deeper than 64 levels is not written here.
    private var needsComma: UInt64 = 0
    private var depth = 0

    public init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public enum Value {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)
        case null
        case raw(String)
    }

    public mutating func beginObject() { open(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { open(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    private mutating func open(_ bracket: UInt8) {
        separator()
        bytes.append(bracket)
        precondition(depth < 64, "JSONText: nested deeper than 64 levels")
        depth += 1
        needsComma &= ~(1 << UInt64(depth - 1))
    }

    private mutating func close(_ bracket: UInt8) {
        bytes.append(bracket)
        depth -= 1
    }

    public mutating func key(_ k: String) {
        separator()
        Self.appendString(k, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        if depth > 0 { needsComma &= ~(1 << UInt64(depth - 1)) }
    }

    public mutating func value(_ v: Value) {
        separator()
        switch v {
        case .string(let s): Self.appendString(s, to: &bytes)
        case .int(let i): Self.appendInt(i, to: &bytes)
        case .double(let d): bytes.append(contentsOf: (d.isFinite ? String(d) : "null").utf8)
        case .bool(let b): bytes.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: bytes.append(contentsOf: "null".utf8)
        case .raw(let r): bytes.append(contentsOf: r.utf8)
        }
    }

    /// A value written by `write` straight into the bytes (a timestamp, say), without a
    /// String in between; `write` must append one whole JSON value.
    public mutating func value(writing write: (inout [UInt8]) -> Void) {
        separator()
        write(&bytes)
    }

    public mutating func field(_ k: String, _ v: Value) {
        key(k)
        value(v)
    }
    public mutating func field(_ k: String, _ s: String?) {
        key(k)
        value(s.map(Value.string) ?? .null)
    }

    private mutating func separator() {
        guard depth > 0 else { return }
        let bit: UInt64 = 1 << UInt64(depth - 1)
        if needsComma & bit != 0 { bytes.append(UInt8(ascii: ",")) } else { needsComma |= bit }
    }

    static func appendInt(_ i: Int, to out: inout [UInt8]) {
        if i < 0 { out.append(UInt8(ascii: "-")) }
        var v = i.magnitude
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                n += 1
            } while v > 0
            while n > 0 {
                n -= 1
                out.append(d[n])
            }
        }
    }

    /// True when every byte is printable ASCII other than a quote and a backslash (copied as it is).
    /// Eight bytes at a time: a record's URLs, hosts and keys are checked for every incident.
    @inline(__always)
    static func isPlain(_ b: UnsafeRawBufferPointer) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        /// A high bit where a byte of `v` is zero (exact for whether any is).
        func zeroByte(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
        func bad(_ w: UInt64) -> Bool {
            // Below 0x20, 0x80 or above, 0x7F, a quote, a backslash.
            ((w &- ones &* 0x20) & ~w & highs) | (w & highs) | zeroByte(w ^ (ones &* 0x7F))
                | zeroByte(w ^ (ones &* 0x22)) | zeroByte(w ^ (ones &* 0x5C)) != 0
        }
        var i = 0
        while i + 8 <= b.count {
            if bad(b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return false }
            i += 8
        }
        while i < b.count {
            let c = b[i]
            if c < 0x20 || c >= 0x7F || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return false }
            i += 1
        }
        return true
    }

    /// Appends `s` as a JSON string. Printable ASCII without quotes or backslashes (nearly
    /// every host and URL) is copied as it is; anything else goes scalar by scalar.
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Native Strings are contiguous UTF-8: check and copy the buffer in one pass each.
        let copied =
            s.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
                guard isPlain(UnsafeRawBufferPointer(bytes)) else { return false }
                out.append(contentsOf: bytes)
                return true
            } ?? false
        if !copied {
            for u in s.unicodeScalars {
                switch u {
                case "\"": out.append(contentsOf: "\\\"".utf8)
                case "\\": out.append(contentsOf: "\\\\".utf8)
                case "\n": out.append(contentsOf: "\\n".utf8)
                case "\r": out.append(contentsOf: "\\r".utf8)
                case "\t": out.append(contentsOf: "\\t".utf8)
                default:
                    if Terminal.isControl(u) {
                        let hex = String(u.value, radix: 16)
                        out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
                    } else {
                        out.append(contentsOf: String(u).utf8)
                    }
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
