/// What the records dropped at the queue's bound were, where they were incidents: a tally per
/// person, category and severity (count, first and last seen), exact, written in the `lost`
/// line with the total. Only while the log cannot be written, and only medium, low and info
/// records, are ever dropped; this keeps who and what they were, so that a DSL reading the
/// log knows which pupils had incidents it could not keep. The tally itself is bounded: past
/// `limit` distinct (person, category, severity) the incidents are counted only.
struct DroppedIncidents: Sendable, Equatable {
    struct Key: Hashable, Sendable {
        var person: String
        var category: String
        var severity: String
    }

    struct Tally: Sendable, Equatable {
        var count: Int
        var first: String
        var last: String
    }

    static let limit = 10_000
    static let keys: Set<String> = ["time", "client", "user", "category", "severity"]

    private(set) var tallies: [Key: Tally] = [:]
    /// Keys in the order they were first dropped.
    private(set) var order: [Key] = []
    /// Incidents dropped past `limit` distinct keys: counted in the total, not tallied.
    private(set) var untallied = 0

    var isEmpty: Bool { order.isEmpty && untallied == 0 }

    /// Tallies one dropped record if it is an incident (events such as `hits` or `context`
    /// are only counted, in the `lost` line's total).
    mutating func add(_ bytes: [UInt8]) {
        let line = String(decoding: bytes, as: UTF8.self)
        guard let head = LogLine.head(line), head.event == "incident" else { return }
        let f = RecordFields.strings(line, keys: Self.keys) ?? [:]
        let person = (f["user"] ?? nil) ?? (f["client"] ?? nil) ?? "unknown"
        let key = Key(person: person, category: (f["category"] ?? nil) ?? "", severity: (f["severity"] ?? nil) ?? "")
        let time = (f["time"] ?? nil) ?? ""
        add(key, Tally(count: 1, first: time, last: time))
    }

    private mutating func add(_ key: Key, _ t: Tally) {
        if var old = tallies[key] {
            old.count += t.count
            old.first = min(old.first, t.first)
            old.last = max(old.last, t.last)
            tallies[key] = old
        } else if order.count < Self.limit {
            tallies[key] = t
            order.append(key)
        } else {
            untallied += t.count
        }
    }

    /// `other`'s tallies added to these (an older tally put back when its `lost` line could not
    /// be written).
    mutating func merge(_ other: DroppedIncidents) {
        for key in other.order { add(key, other.tallies[key]!) }
        untallied += other.untallied
    }

    var summaries: [LostRecord.Summary] {
        order.map { k in
            let t = tallies[k]!
            return LostRecord.Summary(
                person: k.person,
                category: k.category,
                severity: k.severity,
                count: t.count,
                first: t.first,
                last: t.last
            )
        }
    }
}
