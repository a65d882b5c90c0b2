import Classifier

extension IncidentRecord {
    /// An `incident` line read by its bytes, without JSONDecoder: the same record the decoder
    /// gives, for a line in the shape esafety writes (every key of the expected type or null,
    /// `source` and `rule` objects of plain values, `route` an array of strings, integers
    /// without a fraction, no surrogate `\u` escape, no key twice). Anything else gives nil and
    /// the caller decodes the line the lenient way (`LogRecord(line:)` does), so the two can
    /// never disagree: this reader never guesses. A list, a report or the console reads every
    /// incident it shows; decoding was half of a list's time.
    init?(scanning line: some StringProtocol) {
        var text = String(line)
        guard let record = text.withUTF8({ IncidentRecord.scan(JSONScan(bytes: $0)) }) else { return nil }
        self = record
    }

    private static func scan(_ s: JSONScan) -> IncidentRecord? {
        var s = s
        var id = ""
        var time = ""
        var category = ""
        var group = ""
        var client = ""
        var host = ""
        var action = "unknown"
        var severity: String?
        var user: String?
        var device: String?
        var mac: String?
        var url: String?
        var searchTerm: String?
        var blockedBy: String?
        var categoryName: String?
        var window: String?
        var firstSeen: String?
        var lastSeen: String?
        var due: String?
        var source = Source(format: "", peer: "")
        var rule = Rule(kind: nil, file: "", line: 0, rule: "", generation: 0, locked: false)
        var repeated = false
        var route: [String] = []
        var hits = 1
        // Each key once (the decoder's answer for a key given twice is not this reader's to
        // guess), and no key this version does not know.
        let read = s.object(Self.keys) { s, key in
            switch key {
            case .event:
                guard let v = s.optionalString() else { return false }
                return v == nil || v == LogRecord.Kind.incident.rawValue
            case .id: return s.field(&id)
            case .time: return s.field(&time)
            case .category: return s.field(&category)
            case .group: return s.field(&group)
            case .client: return s.field(&client)
            case .host: return s.field(&host)
            case .action: return s.field(&action)
            case .severity: return s.field(&severity)
            case .user: return s.field(&user)
            case .device: return s.field(&device)
            case .mac: return s.field(&mac)
            case .url: return s.field(&url)
            case .searchTerm: return s.field(&searchTerm)
            case .blockedBy: return s.field(&blockedBy)
            case .categoryName: return s.field(&categoryName)
            case .window: return s.field(&window)
            case .firstSeen: return s.field(&firstSeen)
            case .lastSeen: return s.field(&lastSeen)
            case .due: return s.field(&due)
            case .repeated: return s.field(&repeated)
            case .hits: return s.field(&hits)
            case .route: return s.field(&route)
            case .source:
                if s.null() { return true }
                guard let v = scanSource(&s) else { return false }
                source = v
                return true
            case .rule:
                if s.null() { return true }
                guard let v = scanRule(&s) else { return false }
                rule = v
                return true
            case .chain:
                return s.skipString()
            }
        }
        guard read, s.atEnd() else { return nil }
        var r = IncidentRecord(
            id: id,
            time: RecordTime(text: time),
            severity: severity.flatMap(Severity.init(name:)),
            category: category,
            group: group,
            client: client,
            user: user,
            device: device,
            mac: mac,
            host: host,
            url: url,
            searchTerm: searchTerm,
            action: action,
            source: source,
            rule: rule,
            repeated: repeated,
            window: window,
            route: route,
            hits: hits,
            firstSeen: firstSeen.map(RecordTime.init(text:)),
            lastSeen: lastSeen.map(RecordTime.init(text:)),
            due: due.map(RecordTime.init(text:))
        )
        r.blockedBy = blockedBy
        r.categoryName = categoryName
        return r
    }

    /// The keys an incident line may have (`chain` is the log's, not the record's).
    private enum ScanKey: String, CaseIterable {
        case event, id, time, severity, category
        case categoryName = "category_name"
        case group, client, user, device, mac
        case host, url
        case searchTerm = "search_term"
        case action
        case blockedBy = "blocked_by"
        case source, rule, repeated, window
        case route, hits
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case due, chain
    }

    private static let keys = JSONKeys<ScanKey>()

    /// `source`: both keys present as strings (the decoder's Source needs both).
    private enum SourceKey: String, CaseIterable { case format, peer }
    private static let sourceKeys = JSONKeys<SourceKey>()

    private static func scanSource(_ s: inout JSONScan) -> Source? {
        var format: String?
        var peer: String?
        let read = s.object(sourceKeys) { s, key in
            let v = s.string()
            if key == .format { format = v } else { peer = v }
            return v != nil
        }
        guard read, let format, let peer else { return nil }
        return Source(format: format, peer: peer)
    }

    private enum RuleKey: String, CaseIterable { case kind, file, line, rule, generation, locked }
    private static let ruleKeys = JSONKeys<RuleKey>()

    private static func scanRule(_ s: inout JSONScan) -> Rule? {
        var kind: String?
        var file = ""
        var line = 0
        var text = ""
        var generation = 0
        var locked = false
        let read = s.object(ruleKeys) { s, key in
            switch key {
            case .kind: return s.field(&kind)
            case .file: return s.field(&file)
            case .rule: return s.field(&text)
            case .line: return s.field(&line)
            case .generation: return s.field(&generation)
            case .locked: return s.field(&locked)
            }
        }
        guard read else { return nil }
        return Rule(
            kind: kind.flatMap(MatchKind.init(name:)),
            file: file,
            line: line,
            rule: text,
            generation: generation,
            locked: locked
        )
    }
}

extension HitsRecord {
    /// A `hits` line by its bytes, as `IncidentRecord(scanning:)` reads an incident: the
    /// decoder's record for a line in esafety's own shape, nil for anything else.
    init?(scanning line: some StringProtocol) {
        var text = String(line)
        guard let record = text.withUTF8({ HitsRecord.scan(JSONScan(bytes: $0)) }) else { return nil }
        self = record
    }

    private enum ScanKey: String, CaseIterable {
        case event, id, time, hits
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case sampleURLs = "sample_urls"
        case chain
    }

    private static let keys = JSONKeys<ScanKey>()

    private static func scan(_ s: JSONScan) -> HitsRecord? {
        var s = s
        var id = ""
        var time: String?
        var firstSeen: String?
        var lastSeen: String?
        var hits = 1
        var samples: [String] = []
        var event = false
        let read = s.object(keys) { s, key in
            switch key {
            case .event:
                event = s.string() == LogRecord.Kind.hits.rawValue
                return event
            case .id: return s.field(&id)
            case .time: return s.field(&time)
            case .firstSeen: return s.field(&firstSeen)
            case .lastSeen: return s.field(&lastSeen)
            case .hits: return s.field(&hits)
            case .sampleURLs: return s.field(&samples)
            case .chain: return s.skipString()
            }
        }
        guard read, event, s.atEnd() else { return nil }
        let last = RecordTime(text: lastSeen ?? time ?? "")
        var r = HitsRecord(
            id: id,
            hits: hits,
            firstSeen: firstSeen.map(RecordTime.init(text:)) ?? last,
            lastSeen: last,
            sampleURLs: samples
        )
        r.time = time.map(RecordTime.init(text:)) ?? last
        return r
    }
}

/// The keys an object may have (at most 64), each matched to its case by its bytes.
struct JSONKeys<Key: RawRepresentable & CaseIterable & Sendable>: Sendable where Key.RawValue == String {
    let cases: [Key]
    let bytes: [[UInt8]]

    init() {
        cases = Array(Key.allCases)
        bytes = cases.map { Array($0.rawValue.utf8) }
        precondition(cases.count <= 64, "a seen-keys mask of 64 bits")
    }

    /// The place of the key whose bytes these are, nil when none.
    func index(of key: UnsafeBufferPointer<UInt8>) -> Int? {
        for n in bytes.indices where bytes[n].count == key.count && bytes[n].first == key.first {
            if bytes[n].elementsEqual(key) { return n }
        }
        return nil
    }
}

/// A strict reader of JSON by bytes, for the shapes esafety writes: each method reads one
/// thing or says it cannot (nil or false), and the caller then gives up on the fast path.
struct JSONScan {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { b = bytes }

    mutating func space() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
    }

    /// Opens an object (`{`).
    mutating func begin(_ c: UInt8) -> Bool {
        space()
        guard i < b.count, b[i] == c else { return false }
        i += 1
        return true
    }

    /// The next key of an object and its `:`; "" at the object's end (`}`), nil when the text
    /// is not what a key may be here (a key with an escape is left to the decoder).
    mutating func nextKey(first: inout Bool) -> String? {
        guard let next = nextKeyBytes(first: &first) else { return nil }
        guard let range = next else { return "" }
        return String(decoding: UnsafeBufferPointer(rebasing: b[range]), as: UTF8.self)
    }

    /// The same as where its bytes are: .some(nil) at the object's end.
    mutating func nextKeyBytes(first: inout Bool) -> Range<Int>?? {
        space()
        guard i < b.count else { return nil }
        if b[i] == 0x7D {
            i += 1
            return .some(nil)
        }
        if !first {
            guard b[i] == 0x2C else { return nil }
            i += 1
            space()
        }
        first = false
        guard i < b.count, b[i] == 0x22 else { return nil }
        let start = i + 1
        var j = start
        while j < b.count, b[j] != 0x22 {
            guard b[j] != 0x5C, b[j] >= 0x20 else { return nil }
            j += 1
        }
        guard j < b.count, j > start else { return nil }
        i = j + 1
        space()
        guard i < b.count, b[i] == 0x3A else { return nil }
        i += 1
        return .some(start..<j)
    }

    /// Only whitespace left.
    mutating func atEnd() -> Bool {
        space()
        return i == b.count
    }

    /// `null`, consumed.
    mutating func null() -> Bool { literal("null") }

    private mutating func literal(_ word: StaticString) -> Bool {
        space()
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
        // The word ends there (`nullx` is not null).
        if i + n < b.count, Self.isWordByte(b[i + n]) { return false }
        i += n
        return true
    }

    private static func isWordByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x2D
            || c == 0x2B || c == 0x5F
    }

    /// A string value; nil for anything else (null included) or an escape left to the decoder.
    mutating func string() -> String? {
        space()
        guard i < b.count, b[i] == 0x22 else { return nil }
        let start = i + 1
        var j = start
        while j < b.count, b[j] != 0x22, b[j] != 0x5C {
            guard b[j] >= 0x20 else { return nil }
            j += 1
        }
        guard j < b.count else { return nil }
        if b[j] == 0x22 {
            i = j + 1
            return String(decoding: UnsafeBufferPointer(rebasing: b[start..<j]), as: UTF8.self)
        }
        // Escapes: the bytes again, unescaped.
        var raw = Array(b[start..<j])
        while j < b.count, b[j] != 0x22 {
            let c = b[j]
            guard c >= 0x20 else { return nil }
            if c != 0x5C {
                raw.append(c)
                j += 1
                continue
            }
            guard j + 1 < b.count else { return nil }
            switch b[j + 1] {
            case 0x22: raw.append(0x22)
            case 0x5C: raw.append(0x5C)
            case 0x2F: raw.append(0x2F)
            case 0x62: raw.append(0x08)
            case 0x66: raw.append(0x0C)
            case 0x6E: raw.append(0x0A)
            case 0x72: raw.append(0x0D)
            case 0x74: raw.append(0x09)
            case 0x75:
                guard j + 5 < b.count else { return nil }
                var v: UInt32 = 0
                for k in 2...5 {
                    guard let d = Self.hex(b[j + k]) else { return nil }
                    v = v << 4 | d
                }
                // A surrogate (half of a pair) is left to the decoder.
                guard let scalar = Unicode.Scalar(v) else { return nil }
                raw.append(contentsOf: String(Character(scalar)).utf8)
                j += 4
            default: return nil
            }
            j += 2
        }
        guard j < b.count else { return nil }
        i = j + 1
        return String(decoding: raw, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt32? {
        switch c {
        case 0x30...0x39: UInt32(c - 0x30)
        case 0x41...0x46: UInt32(c - 0x41 + 10)
        case 0x61...0x66: UInt32(c - 0x61 + 10)
        default: nil
        }
    }

    /// A string or null: .some(nil) for null, nil when it is neither.
    mutating func optionalString() -> String?? {
        if null() { return .some(nil) }
        return string().map { .some($0) }
    }

    /// Reads a string into `value` (null leaves it as it is, as the decoder's default does).
    mutating func field(_ value: inout String) -> Bool {
        guard let v = optionalString() else { return false }
        if let v { value = v }
        return true
    }

    mutating func field(_ value: inout String?) -> Bool {
        guard let v = optionalString() else { return false }
        value = v
        return true
    }

    /// Reads an integer, true or false, or an array of strings into `value`; null leaves it as
    /// it is (the decoder's default), like a string's `field`.
    mutating func field(_ value: inout Int) -> Bool {
        guard let v = optionalInt() else { return false }
        if let v { value = v }
        return true
    }

    mutating func field(_ value: inout Bool) -> Bool {
        guard let v = optionalBool() else { return false }
        if let v { value = v }
        return true
    }

    mutating func field(_ value: inout [String]) -> Bool {
        guard let v = optionalStrings() else { return false }
        if let v { value = v }
        return true
    }

    /// Reads an object whose keys are among `keys`, each at most once, `value` reading what
    /// follows each key (false gives up). A key given twice (which of the two a decoder takes
    /// is not this reader's to guess) gives up too, and so does a key not among them unless
    /// `skippingOthers` (then its value is passed over). Keys are matched by their bytes, with
    /// no String made.
    mutating func object<Key>(
        _ keys: JSONKeys<Key>,
        skippingOthers: Bool = false,
        _ value: (inout JSONScan, Key) -> Bool
    ) -> Bool {
        guard begin(0x7B) else { return false }
        var seen: UInt64 = 0
        var first = true
        while true {
            guard let next = nextKeyBytes(first: &first) else { return false }
            guard let range = next else { return true }
            guard let n = keys.index(of: UnsafeBufferPointer(rebasing: b[range])) else {
                guard skippingOthers, skipValue() else { return false }
                continue
            }
            guard seen & 1 << n == 0, value(&self, keys.cases[n]) else { return false }
            seen |= 1 << n
        }
    }

    /// An integer as JSON writes one (`-?(0|[1-9][0-9]*)`, in range) or null.
    mutating func optionalInt() -> Int?? {
        if null() { return .some(nil) }
        space()
        let start = i
        var j = i
        if j < b.count, b[j] == 0x2D { j += 1 }
        let digits = j
        while j < b.count, b[j] >= 0x30, b[j] <= 0x39 { j += 1 }
        guard j > digits, j - digits <= 18, !(b[digits] == 0x30 && j - digits > 1) else { return nil }
        if j < b.count, Self.isWordByte(b[j]) { return nil }  // a fraction or an exponent
        var v = 0
        for k in digits..<j { v = v * 10 + Int(b[k] - 0x30) }
        i = j
        return .some(b[start] == 0x2D ? -v : v)
    }

    mutating func optionalBool() -> Bool?? {
        if null() { return .some(nil) }
        if literal("true") { return .some(true) }
        if literal("false") { return .some(false) }
        return nil
    }

    /// An array of strings or null.
    mutating func optionalStrings() -> [String]?? {
        if null() { return .some(nil) }
        guard begin(0x5B) else { return nil }
        var out: [String] = []
        space()
        if i < b.count, b[i] == 0x5D {
            i += 1
            return .some(out)
        }
        while true {
            guard let v = string() else { return nil }
            out.append(v)
            space()
            guard i < b.count else { return nil }
            if b[i] == 0x5D {
                i += 1
                return .some(out)
            }
            guard b[i] == 0x2C else { return nil }
            i += 1
        }
    }

    /// A string value passed over; without an escape in it, no String is made (with one, it
    /// is read as `string()` reads it, so what it refuses is refused here too).
    mutating func skipString() -> Bool {
        space()
        guard i < b.count, b[i] == 0x22 else { return false }
        var j = i + 1
        while j < b.count, b[j] != 0x22 {
            guard b[j] >= 0x20 else { return false }
            if b[j] == 0x5C { return string() != nil }
            j += 1
        }
        guard j < b.count else { return false }
        i = j + 1
        return true
    }

    /// Whether the next value is a string.
    mutating func startsString() -> Bool {
        space()
        return i < b.count && b[i] == 0x22
    }

    /// Any value passed over: a string read as one, an object or array to its matching end
    /// (strings inside it skipped whole), anything else to the next `,` or `}`.
    mutating func skipValue() -> Bool {
        space()
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

    /// The text of a value that is not a string, as written (`null`, a number, an object).
    mutating func rawValue() -> String? {
        space()
        let start = i
        guard skipValue() else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
    }
}
