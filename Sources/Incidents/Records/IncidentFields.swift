import Classifier

/// What the incident index and the trust's central store keep of an `incident` line, as
/// strings: read by position with `RecordFields` when the line is in esafety's own shape,
/// from the decoded record otherwise. One reader for both, so they cannot disagree.
public struct IncidentFields: Sendable, Equatable {
    public var id: String
    public var time: String
    /// The severity's name, or "" when the record has none.
    public var severity: String
    public var category: String
    public var group: String
    public var client: String
    public var user: String?
    public var host: String
    public var url: String?
    public var searchTerm: String?
    public var due: String?
    /// How many requests the incident counts when written (a later `hits` line raises it).
    public var hits: Int

    /// The person: the user when the log named one, else the client address.
    public var person: String { user ?? client }
    /// The severity's rank (info 0 ... critical 4), -1 when it has none.
    public var rank: Int { Severity(name: severity).map { Int($0.rawValue) } ?? -1 }

    /// The keys read by position; any other key of the line is passed over.
    private enum Key: String, CaseIterable {
        case id, time, severity, category, group, client, user, host, url
        case searchTerm = "search_term"
        case due, hits
    }

    private static let keys = JSONKeys<Key>()

    /// By position, without decoding the line; nil when it is not in a shape this reader walks,
    /// names one of these keys twice, holds one as neither a string nor null, or lacks a
    /// required field (the caller then decodes it whole and uses `init(_:)`). Keys are matched
    /// by their bytes: the index and the forwarder read every incident line here.
    public init?(line: String) {
        var id: String?
        var time: String?
        var severity: String?
        var category: String?
        var group: String?
        var client: String?
        var user: String?
        var host: String?
        var url: String?
        var searchTerm: String?
        var due: String?
        var hits = 1
        var text = line
        let read = text.withUTF8 { bytes in
            var s = JSONScan(bytes: bytes)
            return s.object(Self.keys, skippingOthers: true) { s, key in
                switch key {
                case .id: return s.field(&id)
                case .time: return s.field(&time)
                case .severity: return s.field(&severity)
                case .category: return s.field(&category)
                case .group: return s.field(&group)
                case .client: return s.field(&client)
                case .user: return s.field(&user)
                case .host: return s.field(&host)
                case .url: return s.field(&url)
                case .searchTerm: return s.field(&searchTerm)
                case .due: return s.field(&due)
                case .hits: return s.field(&hits)
                }
            }
        }
        guard read, let id, let time, let client, let host else { return nil }
        (self.id, self.time, self.client, self.host) = (id, time, client, host)
        // As the record reads it: a name this version does not know is no severity.
        self.severity = severity.flatMap(Severity.init(name:))?.description ?? ""
        (self.category, self.group) = (category ?? "", group ?? "")
        (self.user, self.url, self.searchTerm, self.due, self.hits) = (user, url, searchTerm, due, hits)
    }

    public init(_ r: IncidentRecord) {
        (id, time, severity) = (r.id, r.time.text, r.severity?.description ?? "")
        (category, group, client, user, host) = (r.category, r.group, r.client, r.user, r.host)
        (url, searchTerm, due, hits) = (r.url, r.searchTerm, r.due?.text, r.hits)
    }
}
