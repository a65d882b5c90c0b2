/// The top-level string fields of one JSON object line, read without decoding the whole
/// record: a note's text for the index, a lost incident's tally. Nested objects and arrays
/// are skipped; strings are unescaped (JSON's escapes, `\u` included). Nil when the line is
/// not an object this reader can walk or names a wanted key twice. A wanted key whose value
/// is not a string or null is given as the value's text. (An incident's own fields are read
/// by `IncidentFields(line:)`.)
public enum RecordFields {
    public static func strings(_ line: String, keys: Set<String>) -> [String: String?]? {
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
                    guard let text = s.rawValue() else { return nil }
                    out[key] = .some(text)
                }
            }
        }
    }
}
