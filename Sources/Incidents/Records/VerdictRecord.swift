import SystemSupport

/// `verdict`: the resolver's answer to a request that opened an incident, learnt from a line
/// logged after the query (unbound or BIND `rpz`, dnsmasq `config NAME is NXDOMAIN`, Pi-hole
/// `gravity blocked`). The incident's record stays as written (the log is append-only); the
/// tools show the request as this line says.
public struct VerdictRecord: Sendable, Equatable {
    public var id: String
    public var time: RecordTime
    /// `blocked`.
    public var action: String
    /// Who blocked it: `rpz`, `dnsmasq`, `pihole`.
    public var blockedBy: String?

    public init(id: String, time: RecordTime, action: String, blockedBy: String?) {
        (self.id, self.time, self.action, self.blockedBy) = (id, time, action, blockedBy)
    }

    public func write(to j: inout JSONText) {
        j.beginObject()
        j.field("event", .string(LogRecord.Kind.verdict.rawValue))
        j.field("id", .string(id))
        j.field("time", time)
        j.field("action", .string(action))
        if let blockedBy { j.field("blocked_by", .string(blockedBy)) }
        j.endObject()
    }
}

extension VerdictRecord: Decodable {
    enum Keys: String, CodingKey {
        case id, time, action
        case blockedBy = "blocked_by"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        self.init(
            id: c.lenient(String.self, .id) ?? "",
            time: RecordTime(text: c.lenient(String.self, .time) ?? ""),
            action: c.lenient(String.self, .action) ?? "unknown",
            blockedBy: c.lenient(String.self, .blockedBy)
        )
    }
}
