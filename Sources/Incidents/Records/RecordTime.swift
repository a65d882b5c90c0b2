import SystemSupport

/// A time in a record: UTC, RFC 3339 with milliseconds (`2026-11-21T10:00:00.000Z`).
///
/// esafetyd's writer holds the seconds and writes the text straight into the line's bytes
/// (no String per time: the incident path writes several per incident); a reader holds the
/// text exactly as the log has it. Either way `text` is the same, and two times compare by
/// their text, which sorts as time does.
public struct RecordTime: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    enum Storage: Sendable, Hashable {
        case seconds(Double)
        case text(String)
    }

    let storage: Storage

    /// A time esafetyd writes.
    public init(seconds: Double) { storage = .seconds(seconds) }
    /// A time as a line holds it.
    public init(text: String) { storage = .text(text) }
    public init(stringLiteral value: String) { storage = .text(value) }

    public var text: String {
        switch storage {
        case .seconds(let s): Clock.rfc3339(s)
        case .text(let t): t
        }
    }

    public var description: String { text }

    public static func == (a: RecordTime, b: RecordTime) -> Bool { a.text == b.text }
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
    public static func < (a: RecordTime, b: RecordTime) -> Bool { a.text < b.text }

    /// Written as a JSON string (the writer's bytes go through `write(to:)`).
    func write(to j: inout JSONText) {
        switch storage {
        case .seconds(let s): j.value { Clock.appendRFC3339(s, quotedTo: &$0) }
        case .text(let t): j.value(.string(t))
        }
    }
}

extension JSONText {
    mutating func field(_ k: String, _ t: RecordTime) {
        key(k)
        t.write(to: &self)
    }

    mutating func field(_ k: String, _ t: RecordTime?) {
        key(k)
        if let t { t.write(to: &self) } else { value(.null) }
    }
}

extension RecordTime: Codable {
    public init(from decoder: Decoder) throws {
        self.init(text: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(text)
    }
}
