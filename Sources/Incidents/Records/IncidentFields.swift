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

    /// The person: the user when the log named one, else the client address.
    public var person: String { user ?? client }
    /// The severity's rank (info 0 ... critical 4), -1 when it has none.
    public var rank: Int { Severity(name: severity).map { Int($0.rawValue) } ?? -1 }

    static let keys: Set<String> = [
        "id", "time", "severity", "category", "group", "client", "user", "host", "url", "search_term", "due",
    ]

    /// By position, without decoding the line; nil when it is not in a shape this reader walks
    /// or lacks a required field (the caller then decodes it whole and uses `init(_:)`).
    public init?(line: String) {
        guard let f = RecordFields.strings(line, keys: Self.keys, raw: false), let id = f["id"] ?? nil,
            let time = f["time"] ?? nil, let client = f["client"] ?? nil, let host = f["host"] ?? nil
        else { return nil }
        (self.id, self.time, self.client, self.host) = (id, time, client, host)
        // As the record reads it: a name this version does not know is no severity.
        severity = ((f["severity"] ?? nil).flatMap(Severity.init(name:)))?.description ?? ""
        category = (f["category"] ?? nil) ?? ""
        group = (f["group"] ?? nil) ?? ""
        (user, url, searchTerm, due) = (f["user"] ?? nil, f["url"] ?? nil, f["search_term"] ?? nil, f["due"] ?? nil)
    }

    public init(_ r: IncidentRecord) {
        (id, time, severity) = (r.id, r.time.text, r.severity?.description ?? "")
        (category, group, client, user, host) = (r.category, r.group, r.client, r.user, r.host)
        (url, searchTerm, due) = (r.url, r.searchTerm, r.due?.text)
    }
}
