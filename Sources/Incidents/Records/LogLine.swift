/// What readers take from a log line without decoding it: esafety writes every event line
/// with `event`, then `id`, then `time` first (`{"event":"NAME","id":"ID","time":"T",...`,
/// the fixed key order of its records), so these are found by position. Nil for any other
/// shape: the caller then decodes the line whole (`LogRecord(line:)`).
public enum LogLine {
    /// `event` and `id` of a line as esafety writes them; the id is empty when the line has none.
    public static func head(_ line: String) -> (event: Substring, id: Substring)? {
        let prefix = "{\"event\":\""
        guard line.hasPrefix(prefix) else { return nil }
        let rest = line.dropFirst(prefix.count)
        guard let q = rest.firstIndex(of: "\"") else { return nil }
        let event = rest[..<q]
        let after = rest[q...]
        guard after.hasPrefix("\",\"id\":\"") else { return (event, "") }
        let idStart = after.index(after.startIndex, offsetBy: 8)
        guard let e = after[idStart...].firstIndex(of: "\"") else { return nil }
        return (event, after[idStart..<e])
    }

    /// The `time` that follows `event` and `id` in esafety's event lines (nil otherwise).
    public static func time(_ line: String) -> String? {
        guard let r = line.range(of: "\",\"time\":\""), let end = line[r.upperBound...].firstIndex(of: "\"") else {
            return nil
        }
        return String(line[r.upperBound..<end])
    }
}
