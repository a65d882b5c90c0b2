import Classifier
import Foundation
import SystemSupport

/// `hits`: a de-duplication window's final count, written when the window closes.
public struct HitsRecord: Sendable, Equatable {
    public var id: String
    /// The last hit.
    public var time: RecordTime
    public var hits: Int
    var firstSeen: RecordTime
    var lastSeen: RecordTime
    /// Up to five distinct URLs.
    var sampleURLs: [String]

    public init(id: String, hits: Int, firstSeen: RecordTime, lastSeen: RecordTime, sampleURLs: [String]) {
        (self.id, self.time, self.hits) = (id, lastSeen, hits)
        (self.firstSeen, self.lastSeen, self.sampleURLs) = (firstSeen, lastSeen, sampleURLs)
    }

    public func write(to j: inout JSONText) {
        j.beginObject()
        j.field("event", .string(LogRecord.Kind.hits.rawValue))
        j.field("id", .string(id))
        j.field("time", time)
        j.field("hits", .int(hits))
        j.field("first_seen", firstSeen)
        j.field("last_seen", lastSeen)
        j.key("sample_urls")
        j.beginArray()
        for u in sampleURLs { j.value(.string(u)) }
        j.endArray()
        j.endObject()
    }
}

extension HitsRecord: Decodable {
    enum Keys: String, CodingKey {
        case id, time, hits
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case sampleURLs = "sample_urls"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let last = RecordTime(text: c.lenient(String.self, .lastSeen) ?? c.lenient(String.self, .time) ?? "")
        self.init(
            id: c.lenient(String.self, .id) ?? "",
            hits: c.lenient(Int.self, .hits) ?? 1,
            firstSeen: c.lenient(String.self, .firstSeen).map(RecordTime.init(text:)) ?? last,
            lastSeen: last,
            sampleURLs: c.lenient([String].self, .sampleURLs) ?? []
        )
        time = c.lenient(String.self, .time).map(RecordTime.init(text:)) ?? last
    }
}

/// `context`: a person's other categorised requests in the hour before or after an incident.
public struct ContextRecord: Sendable, Equatable {
    public enum Span: String, Sendable, Codable { case before, after }

    public struct Request: Sendable, Equatable, Codable {
        public var time: RecordTime
        public var host: String
        public var category: String
        public var searchTerm: String?

        enum CodingKeys: String, CodingKey {
            case time, host, category
            case searchTerm = "search_term"
        }

        public init(time: RecordTime, host: String, category: String, searchTerm: String?) {
            (self.time, self.host, self.category, self.searchTerm) = (time, host, category, searchTerm)
        }
    }

    /// Every incident it belongs to (one hour's context serves all of a person's incidents
    /// in it); the first is written as `id`, and `ids` only when there is more than one.
    public var ids: [String]
    public var time: RecordTime
    public var span: Span
    public var requests: [Request]

    public init(ids: [String], time: RecordTime, span: Span, requests: [Request]) {
        (self.ids, self.time, self.span, self.requests) = (ids, time, span, requests)
    }

    public var id: String { ids.first ?? "" }

    public func write(to j: inout JSONText) {
        j.beginObject()
        j.field("event", .string(LogRecord.Kind.context.rawValue))
        j.field("id", .string(id))
        if ids.count > 1 {
            j.key("ids")
            j.beginArray()
            for id in ids { j.value(.string(id)) }
            j.endArray()
        }
        j.field("time", time)
        j.field("span", .string(span.rawValue))
        j.key("requests")
        j.beginArray()
        for r in requests {
            j.beginObject()
            j.field("time", r.time)
            j.field("host", .string(r.host))
            j.field("category", .string(r.category))
            if let t = r.searchTerm { j.field("search_term", .string(t)) }
            j.endObject()
        }
        j.endArray()
        j.endObject()
    }
}

extension ContextRecord: Decodable {
    enum Keys: String, CodingKey { case id, ids, time, span, requests }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        guard let span = c.lenient(Span.self, .span) else {
            throw DecodingError.dataCorruptedError(forKey: .span, in: c, debugDescription: "not before or after")
        }
        let id = c.lenient(String.self, .id) ?? ""
        self.init(
            ids: c.lenient([String].self, .ids) ?? [id],
            time: RecordTime(text: c.lenient(String.self, .time) ?? ""),
            span: span,
            requests: c.lenient([Request].self, .requests) ?? []
        )
    }
}

/// A workflow action (`ack`, `note`, `assign`, `escalate`, `resolve`, `false-positive`,
/// `reopen`): who did what to an incident, and when.
public struct ActionRecord: Sendable, Equatable {
    public var action: Workflow.Action
    public var id: String
    public var time: String
    /// The person at the keyboard, or the name given with `--by`.
    public var by: String
    /// The account, when `--by` named someone else.
    public var account: String?
    public var note: String?
    /// `assign`: the person; `escalate`: the role.
    public var to: String?
    /// `escalate` to a body outside school.
    public var referral: String?
    public var outcome: String?
    /// `resolve`: what was done.
    public var actionTaken: String?
    public var reason: String?

    public init(
        _ action: Workflow.Action,
        id: String,
        time: String,
        by: String,
        account: String? = nil,
        note: String? = nil,
        to: String? = nil,
        referral: String? = nil,
        outcome: String? = nil,
        actionTaken: String? = nil,
        reason: String? = nil
    ) {
        (self.action, self.id, self.time, self.by, self.account) = (action, id, time, by, account)
        (self.note, self.to, self.referral, self.outcome) = (note, to, referral, outcome)
        (self.actionTaken, self.reason) = (actionTaken, reason)
    }

    /// The optional keys in the order they are written, with their values.
    public var details: [(key: String, value: String)] {
        let all: [(String, String?)] = [
            ("note", note), ("to", to), ("referral", referral), ("outcome", outcome), ("action", actionTaken),
            ("reason", reason), ("account", account),
        ]
        return all.compactMap { k, v in v.map { (k, $0) } }
    }

    public func write(to j: inout JSONText) {
        j.beginObject()
        j.field("event", .string(action.rawValue))
        j.field("id", .string(id))
        j.field("time", .string(time))
        j.field("by", .string(by))
        for (k, v) in details { j.field(k, .string(v)) }
        j.endObject()
    }

    enum Keys: String, CodingKey {
        case event, id, time, by, account, note, to, referral, outcome, action, reason
    }

    init(from decoder: Decoder, action: Workflow.Action) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        self.init(
            action,
            id: c.lenient(String.self, .id) ?? "",
            time: c.lenient(String.self, .time) ?? "",
            by: c.lenient(String.self, .by) ?? "",
            account: c.lenient(String.self, .account),
            note: c.lenient(String.self, .note),
            to: c.lenient(String.self, .to),
            referral: c.lenient(String.self, .referral),
            outcome: c.lenient(String.self, .outcome),
            actionTaken: c.lenient(String.self, .action),
            reason: c.lenient(String.self, .reason)
        )
    }
}

/// `lost`: incidents that could not be kept (the queue overflowed while the log could not
/// be written).
public struct LostRecord: Sendable, Equatable, Decodable {
    public var time: String
    /// Every record dropped: incidents and their events.
    public var count: Int
    public var reason: String
    /// The incidents among them, per person, category and severity (exact counts, first and
    /// last seen); nil when none was an incident.
    public var incidents: [Summary]?
    /// Incidents dropped past the tally's bound of distinct (person, category, severity):
    /// counted in `count`, not summarised.
    public var untallied: Int?

    public struct Summary: Sendable, Equatable, Decodable {
        public var person: String
        public var category: String
        public var severity: String
        public var count: Int
        public var first: String
        public var last: String
    }

    public init(time: String, count: Int, reason: String, incidents: [Summary]? = nil, untallied: Int? = nil) {
        (self.time, self.count, self.reason) = (time, count, reason)
        (self.incidents, self.untallied) = (incidents, untallied)
    }

    public func write(to j: inout JSONText) {
        j.beginObject()
        j.field("event", .string(LogRecord.Kind.lost.rawValue))
        j.field("time", .string(time))
        j.field("count", .int(count))
        j.field("reason", .string(reason))
        if let incidents, !incidents.isEmpty {
            j.key("incidents")
            j.beginArray()
            for s in incidents {
                j.beginObject()
                j.field("person", .string(s.person))
                j.field("category", .string(s.category))
                j.field("severity", .string(s.severity))
                j.field("count", .int(s.count))
                j.field("first", .string(s.first))
                j.field("last", .string(s.last))
                j.endObject()
            }
            j.endArray()
        }
        if let untallied, untallied > 0 { j.field("untallied", .int(untallied)) }
        j.endObject()
    }
}

/// `truncated`: the file was cut short or deleted behind esafetyd's back.
public struct TruncatedRecord: Sendable, Equatable, Decodable {
    public var time: String
    /// The file's size when esafetyd found it (0 for a deleted file).
    public var size: Int
    var expectedSize: Int
    /// The chain value of the last line esafetyd had written there.
    var lastChain: String
    /// A deleted file: where esafetyd saved its lines.
    var recovered: String?
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case time, size
        case expectedSize = "expected_size"
        case lastChain = "last_chain"
        case recovered, reason
    }

    public init(time: String, size: Int, expectedSize: Int, lastChain: String, recovered: String?, reason: String) {
        (self.time, self.size, self.expectedSize, self.lastChain) = (time, size, expectedSize, lastChain)
        (self.recovered, self.reason) = (recovered, reason)
    }

    public func write(to j: inout JSONText) {
        j.beginObject()
        j.field("event", .string(LogRecord.Kind.truncated.rawValue))
        j.field("time", .string(time))
        j.field("size", .int(size))
        j.field("expected_size", .int(expectedSize))
        j.field("last_chain", .string(lastChain))
        j.field("recovered", recovered)
        j.field("reason", .string(reason))
        j.endObject()
    }
}
