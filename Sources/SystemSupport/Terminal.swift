/// Neutralising text that came from logs or lists before it reaches a terminal.
public enum Terminal {
    /// Escapes C0 and C1 control characters and DEL as `\xNN` (or `\u{NNNN}`), so a crafted
    /// URL cannot move the cursor, retitle the window or hide lines.
    public static func escape(_ s: String) -> String {
        var needs = false
        for u in s.unicodeScalars where isControl(u) {
            needs = true
            break
        }
        guard needs else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for u in s.unicodeScalars {
            if isControl(u) {
                if u.value < 0x100 {
                    let hex = String(u.value, radix: 16, uppercase: true)
                    out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                } else {
                    out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
                }
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    @inline(__always)
    static func isControl(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        return v < 0x20 || v == 0x7F || (v >= 0x80 && v < 0xA0) || v == 0x2028 || v == 0x2029
            || (v >= 0x202A && v <= 0x202E) || (v >= 0x2066 && v <= 0x2069)
    }
}
