/// Minimal JSON writing with a fixed key order, for JSON Lines output. Strings are
/// escaped per RFC 8259, and every control character is written as `\uXXXX`, so a
/// record never carries a raw control character.
public struct JSONText {
    public private(set) var text = ""
    private var needsComma: [Bool] = []

    public init() {}

    public enum Value {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)
        case null
        case raw(String)
    }

    public mutating func beginObject() { separator(); text += "{"; needsComma.append(false) }
    public mutating func endObject() { text += "}"; needsComma.removeLast() }
    public mutating func beginArray() { separator(); text += "["; needsComma.append(false) }
    public mutating func endArray() { text += "]"; needsComma.removeLast() }

    public mutating func key(_ k: String) {
        separator()
        Self.appendString(k, to: &text)
        text += ":"
        if !needsComma.isEmpty { needsComma[needsComma.count - 1] = false }
    }

    public mutating func value(_ v: Value) {
        separator()
        switch v {
        case .string(let s): Self.appendString(s, to: &text)
        case .int(let i): text += String(i)
        case .double(let d): text += d.isFinite ? String(d) : "null"
        case .bool(let b): text += b ? "true" : "false"
        case .null: text += "null"
        case .raw(let r): text += r
        }
    }

    public mutating func field(_ k: String, _ v: Value) { key(k); value(v) }
    public mutating func field(_ k: String, _ s: String?) { key(k); value(s.map(Value.string) ?? .null) }

    private mutating func separator() {
        guard !needsComma.isEmpty else { return }
        if needsComma[needsComma.count - 1] { text += "," } else { needsComma[needsComma.count - 1] = true }
    }

    public static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Terminal.isControl(u) {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    public static func quoted(_ s: String) -> String {
        var out = ""
        appendString(s, to: &out)
        return out
    }
}

extension MatchDetail {
    /// `{"name":…,"severity":…,"kind":…,"file":…,"line":…,"rule":…,"locked":…}`
    public func write(to json: inout JSONText) {
        json.beginObject()
        json.field("name", .string(name))
        json.field("severity", .string(severity))
        json.field("kind", .string(kind))
        json.field("file", .string(file))
        json.field("line", .int(line))
        json.field("rule", .string(rule))
        json.field("locked", .bool(locked))
        json.endObject()
    }
}

extension Verdict {
    /// One JSON object: `target`, `host`, `url`, `categories`, `allowed_by`, `suppressed`.
    public var json: String {
        var j = JSONText()
        j.beginObject()
        j.field("target", .string(target))
        j.field("host", .string(host))
        j.field("url", url)
        j.key("categories")
        j.beginArray()
        for c in categories { c.write(to: &j) }
        j.endArray()
        j.key("allowed_by")
        if let allowedBy { allowedBy.write(to: &j) } else { j.value(.null) }
        j.key("suppressed")
        j.beginArray()
        for c in suppressed { c.write(to: &j) }
        j.endArray()
        if let error { j.field("error", .string(error)) }
        j.endObject()
        return j.text
    }
}
