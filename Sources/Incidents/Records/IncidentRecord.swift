import Classifier
import Foundation
import SystemSupport

/// The `incident` line: the first hit of (person, registrable domain, category) in a window.
///
/// Written by esafetyd's incident sink and read by every reader (the tool, the report, the
/// alerts) through this one type; docs/INCIDENT-LOG.md is the contract for its keys. Times
/// are `RecordTime`s: the seconds when esafetyd writes, the text when a reader reads
/// and round-trips byte for byte.
public struct IncidentRecord: Sendable, Equatable {
    public struct Source: Sendable, Equatable, Codable {
        /// `squid`, `squid-common`, `dnsmasq`, `bind`, `unbound`, `json`.
        public var format: String
        /// `<socket>:<sending process>`, or `<socket>:datagram`.
        public var peer: String
        public init(format: String, peer: String) { (self.format, self.peer) = (format, peer) }
    }

    /// The list rule that matched, as people read it.
    public struct Rule: Sendable, Equatable {
        public var kind: MatchKind?
        public var file: String
        public var line: Int
        public var rule: String
        public var generation: Int
        /// A list nothing may suppress (`iwf`, `ctiru`).
        public var locked: Bool

        public init(kind: MatchKind?, file: String, line: Int, rule: String, generation: Int, locked: Bool) {
            (self.kind, self.file, self.line, self.rule) = (kind, file, line, rule)
            (self.generation, self.locked) = (generation, locked)
        }
    }

    public var id: String
    public var time: RecordTime
    /// Nil only when a line read back names no severity this version knows (a hand-made or
    /// damaged line): shown blank, never guessed.
    public var severity: Severity?
    public var category: String
    /// The category's name for people (`Self-harm`) when the lists gave one.
    public var categoryName: String?
    public var group: String
    public var client: String
    public var user: String?
    public var device: String?
    public var mac: String?
    public var host: String
    public var url: String?
    public var searchTerm: String?
    /// What the proxy or resolver did: `blocked`, `allowed`, `unknown`.
    public var action: String
    /// Who blocked it, when the log shows that: `squid`, `redirector`.
    public var blockedBy: String?
    public var source: Source
    public var rule: Rule
    public var repeated: Bool
    public var window: String?
    var route: [String]
    public var hits: Int
    var firstSeen: RecordTime
    var lastSeen: RecordTime
    public var due: RecordTime?

    public init(
        id: String,
        time: RecordTime,
        severity: Severity?,
        category: String,
        group: String,
        client: String,
        user: String?,
        device: String?,
        mac: String?,
        host: String,
        url: String?,
        searchTerm: String?,
        action: String,
        source: Source,
        rule: Rule,
        repeated: Bool,
        window: String?,
        route: [String],
        hits: Int = 1,
        firstSeen: RecordTime? = nil,
        lastSeen: RecordTime? = nil,
        due: RecordTime?
    ) {
        (self.id, self.time, self.severity, self.category, self.group) = (id, time, severity, category, group)
        (self.client, self.user, self.device, self.mac, self.host) = (client, user, device, mac, host)
        (self.url, self.searchTerm, self.action, self.source, self.rule) = (url, searchTerm, action, source, rule)
        (self.repeated, self.window, self.route, self.hits) = (repeated, window, route, hits)
        (self.firstSeen, self.lastSeen, self.due) = (firstSeen ?? time, lastSeen ?? time, due)
    }

    /// The person: the user when the log (or the users file) named one, else the client address.
    public var person: String { user ?? client }

    /// The line as esafetyd writes it (without its chain).
    public func write(to j: inout JSONText) {
        j.beginObject()
        j.field("event", .string(LogRecord.Kind.incident.rawValue))
        j.field("id", .string(id))
        j.field("time", time)
        j.field("severity", severity?.description)
        j.field("category", .string(category))
        if let categoryName, categoryName != category { j.field("category_name", .string(categoryName)) }
        j.field("group", .string(group))
        j.field("client", .string(client))
        j.field("user", user)
        j.field("device", device)
        if let mac { j.field("mac", .string(mac)) }
        j.field("host", .string(host))
        j.field("url", url)
        j.field("search_term", searchTerm)
        j.field("action", .string(action))
        if let blockedBy { j.field("blocked_by", .string(blockedBy)) }
        j.key("source")
        j.beginObject()
        j.field("format", .string(source.format))
        j.field("peer", .string(source.peer))
        j.endObject()
        j.key("rule")
        j.beginObject()
        j.field("kind", rule.kind?.description)
        j.field("file", .string(rule.file))
        j.field("line", .int(rule.line))
        j.field("rule", .string(rule.rule))
        j.field("generation", .int(rule.generation))
        j.field("locked", .bool(rule.locked))
        j.endObject()
        j.field("repeated", .bool(repeated))
        j.field("window", window)
        j.key("route")
        j.beginArray()
        for r in route { j.value(.string(r)) }
        j.endArray()
        j.field("hits", .int(hits))
        j.field("first_seen", firstSeen)
        j.field("last_seen", lastSeen)
        j.field("due", due)
        j.endObject()
    }
}

extension IncidentRecord: Decodable {
    enum Keys: String, CodingKey {
        case id, time, severity, category, group, client, user, device, mac, host, url
        case categoryName = "category_name"
        case searchTerm = "search_term"
        case action
        case blockedBy = "blocked_by"
        case source, rule, repeated, window, route, hits
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case due
    }

    /// Reads what a reader needs and tolerates what it can: a key left out or of another type
    /// reads as its default, so one odd line (an older version's, a hand-made test's) does not
    /// hide an incident. An unknown severity is not guessed: it reads as nil.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let severity = c.lenient(String.self, .severity).flatMap(Severity.init(name:))
        let time = c.lenient(String.self, .time) ?? ""
        self.init(
            id: c.lenient(String.self, .id) ?? "",
            time: RecordTime(text: time),
            severity: severity,
            category: c.lenient(String.self, .category) ?? "",
            group: c.lenient(String.self, .group) ?? "",
            client: c.lenient(String.self, .client) ?? "",
            user: c.lenient(String.self, .user),
            device: c.lenient(String.self, .device),
            mac: c.lenient(String.self, .mac),
            host: c.lenient(String.self, .host) ?? "",
            url: c.lenient(String.self, .url),
            searchTerm: c.lenient(String.self, .searchTerm),
            action: c.lenient(String.self, .action) ?? "unknown",
            source: c.lenient(Source.self, .source) ?? Source(format: "", peer: ""),
            rule: c.lenient(Rule.self, .rule)
                ?? Rule(kind: nil, file: "", line: 0, rule: "", generation: 0, locked: false),
            repeated: c.lenient(Bool.self, .repeated) ?? false,
            window: c.lenient(String.self, .window),
            route: c.lenient([String].self, .route) ?? [],
            hits: c.lenient(Int.self, .hits) ?? 1,
            firstSeen: c.lenient(String.self, .firstSeen).map(RecordTime.init(text:)),
            lastSeen: c.lenient(String.self, .lastSeen).map(RecordTime.init(text:)),
            due: c.lenient(String.self, .due).map(RecordTime.init(text:))
        )
        blockedBy = c.lenient(String.self, .blockedBy)
        categoryName = c.lenient(String.self, .categoryName)
    }
}

extension IncidentRecord.Rule: Decodable {
    enum Keys: String, CodingKey { case kind, file, line, rule, generation, locked }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        self.init(
            kind: c.lenient(String.self, .kind).flatMap(MatchKind.init(name:)),
            file: c.lenient(String.self, .file) ?? "",
            line: c.lenient(Int.self, .line) ?? 0,
            rule: c.lenient(String.self, .rule) ?? "",
            generation: c.lenient(Int.self, .generation) ?? 0,
            locked: c.lenient(Bool.self, .locked) ?? false
        )
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or nil when it is missing, null or of another type.
    func lenient<T: Decodable>(_ type: T.Type, _ key: Key) -> T? {
        (try? decodeIfPresent(type, forKey: key)) ?? nil
    }
}
