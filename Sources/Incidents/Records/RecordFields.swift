/// The top-level string fields of one JSON object line, read without decoding the whole
/// record: what the index stores of an incident. Nested objects and arrays are skipped;
/// strings are unescaped (JSON's escapes, `\u` included). Nil when the line is not an
/// object this reader can walk or names a wanted key twice (the index then decodes it the
/// slow way). A wanted key whose value is not a string or null is given as the value's text,
/// or, with `raw` false, makes the answer nil (a decoder reading that key as a string would
/// not take it).
public enum RecordFields {
    public static func strings(_ line: String, keys: Set<String>, raw: Bool = true) -> [String: String?]? {
        var text = line
        return text.withUTF8 { bytes -> [String: String?]? in
            var s = JSONScan(bytes: bytes)
            guard s.begin(0x7B) else { return nil }
            var out: [String: String?] = [:]
            var first = true
            while true {
                guard let key = s.nextKey(first: &first) else { return nil }
                if key.isEmpty { return out }
                guard keys.contains(key) else {
                    guard s.skipValue() else { return nil }
                    continue
                }
                // A key given twice: which one a decoder takes is not this reader's to guess.
                guard out[key] == nil else { return nil }
                if s.startsString() {
                    guard let v = s.string() else { return nil }
                    out[key] = .some(v)
                } else if s.null() {
                    out[key] = .some(nil)
                } else {
                    guard raw, let text = s.rawValue() else { return nil }
                    out[key] = .some(text)
                }
            }
        }
    }
}
