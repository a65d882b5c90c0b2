/// The top-level string fields of one JSON object line, read without decoding the whole
/// record: what the index stores of an incident. Nested objects and arrays are skipped;
/// strings are unescaped (JSON's escapes, `\u` included). Nil when the line is not an
/// object this reader can walk (the index then decodes it the slow way).
public enum RecordFields {
    public static func strings(_ line: String, keys: Set<String>) -> [String: String?]? {
        var out: [String: String?] = [:]
        var bytes = Array(line.utf8)
        return bytes.withUnsafeMutableBufferPointer { b -> [String: String?]? in
            var i = 0
            func space() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 } }
            func string() -> String? {
                guard i < b.count, b[i] == 0x22 else { return nil }
                i += 1
                var raw: [UInt8] = []
                while i < b.count, b[i] != 0x22 {
                    if b[i] == 0x5C {
                        i += 1
                        guard i < b.count else { return nil }
                        switch b[i] {
                        case 0x6E: raw.append(0x0A)
                        case 0x74: raw.append(0x09)
                        case 0x72: raw.append(0x0D)
                        case 0x62: raw.append(0x08)
                        case 0x66: raw.append(0x0C)
                        case 0x75:
                            guard i + 4 < b.count,
                                let v = UInt32(String(decoding: b[(i + 1)...(i + 4)], as: UTF8.self), radix: 16)
                            else { return nil }
                            i += 4
                            raw += Array(String(Unicode.Scalar(v).map(Character.init) ?? "\u{FFFD}").utf8)
                        default: raw.append(b[i])
                        }
                        i += 1
                        continue
                    }
                    raw.append(b[i])
                    i += 1
                }
                guard i < b.count else { return nil }
                i += 1
                return String(decoding: raw, as: UTF8.self)
            }
            func skipValue() -> Bool {
                guard i < b.count else { return false }
                if b[i] == 0x22 { return string() != nil }
                if b[i] == 0x7B || b[i] == 0x5B {
                    var depth = 0
                    var inString = false
                    while i < b.count {
                        let c = b[i]
                        if inString {
                            if c == 0x5C { i += 1 } else if c == 0x22 { inString = false }
                        } else if c == 0x22 {
                            inString = true
                        } else if c == 0x7B || c == 0x5B {
                            depth += 1
                        } else if c == 0x7D || c == 0x5D {
                            depth -= 1
                            if depth == 0 {
                                i += 1
                                return true
                            }
                        }
                        i += 1
                    }
                    return false
                }
                while i < b.count, b[i] != 0x2C, b[i] != 0x7D { i += 1 }
                return true
            }
            space()
            guard i < b.count, b[i] == 0x7B else { return nil }
            i += 1
            while true {
                space()
                guard let key = string() else { return nil }
                space()
                guard i < b.count, b[i] == 0x3A else { return nil }
                i += 1
                space()
                if keys.contains(key) {
                    if i < b.count, b[i] == 0x22 {
                        guard let v = string() else { return nil }
                        out[key] = .some(v)
                    } else {
                        let start = i
                        guard skipValue() else { return nil }
                        let text = String(decoding: b[start..<i], as: UTF8.self)
                        out[key] = text == "null" ? .some(nil) : .some(text)
                    }
                } else if !skipValue() {
                    return nil
                }
                space()
                guard i < b.count else { return nil }
                if b[i] == 0x2C {
                    i += 1
                    continue
                }
                return b[i] == 0x7D ? out : nil
            }
        }
    }
}
