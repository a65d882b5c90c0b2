import Classifier
import Foundation
import SystemSupport

/// One line of the incident log, typed: every kind of line esafetyd and the tool write, read
/// back by the same types that wrote it. docs/INCIDENT-LOG.md is the contract for the keys.
public enum LogRecord: Sendable, Equatable {
    case incident(IncidentRecord)
    case hits(HitsRecord)
    case verdict(VerdictRecord)
    case context(ContextRecord)
    case action(ActionRecord)
    case lost(LostRecord)
    case truncated(TruncatedRecord)

    /// The `event` key's values other than the workflow actions.
    public enum Kind: String, Sendable {
        case incident, hits, verdict, context, lost, truncated
    }

    /// The incident the line belongs to (the first of them, for a context line).
    public var id: String? {
        switch self {
        case .incident(let r): r.id
        case .hits(let r): r.id
        case .verdict(let r): r.id
        case .context(let r): r.id
        case .action(let r): r.id
        case .lost, .truncated: nil
        }
    }

    public var time: String {
        switch self {
        case .incident(let r): r.time.text
        case .hits(let r): r.time.text
        case .verdict(let r): r.time.text
        case .context(let r): r.time.text
        case .action(let r): r.time
        case .lost(let r): r.time
        case .truncated(let r): r.time
        }
    }

    /// The `event` key's value.
    public var event: String {
        switch self {
        case .incident: Kind.incident.rawValue
        case .hits: Kind.hits.rawValue
        case .verdict: Kind.verdict.rawValue
        case .context: Kind.context.rawValue
        case .action(let r): r.action.rawValue
        case .lost: Kind.lost.rawValue
        case .truncated: Kind.truncated.rawValue
        }
    }

    /// The line as written, without its chain (the incident log adds `chain`).
    public var bytes: [UInt8] {
        var j = JSONText(capacity: 512)
        switch self {
        case .incident(let r): r.write(to: &j)
        case .hits(let r): r.write(to: &j)
        case .verdict(let r): r.write(to: &j)
        case .context(let r): r.write(to: &j)
        case .action(let r): r.write(to: &j)
        case .lost(let r): r.write(to: &j)
        case .truncated(let r): r.write(to: &j)
        }
        return j.bytes
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Reads one line; nil for a line that is not a record of a kind this version knows (a
    /// partial line left by a crash, a later version's event), which readers pass over.
    /// A line without `event` is an incident (the earliest logs wrote none).
    public init?(line: some StringProtocol) {
        // An incident or a `hits` line in esafety's own shape by its bytes (most of what
        // readers read); any other line, or one not quite that shape, the decoder's lenient way.
        if let incident = IncidentRecord(scanning: line) {
            self = .incident(incident)
            return
        }
        if let hits = HitsRecord(scanning: line) {
            self = .hits(hits)
            return
        }
        self.init(decoding: line)
    }

    /// The decoder's reading of a line (what `init(line:)` gives for anything the byte reader
    /// leaves to it).
    init?(decoding line: some StringProtocol) {
        guard let value = try? Self.decoder.decode(Decoded.self, from: Data(line.utf8)) else { return nil }
        self = value.record
    }

    private static let decoder = JSONDecoder()

    private struct Decoded: Decodable {
        var record: LogRecord
        enum Keys: String, CodingKey { case event }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            let event = c.lenient(String.self, .event) ?? Kind.incident.rawValue
            if let action = Workflow.Action(rawValue: event) {
                record = .action(try ActionRecord(from: decoder, action: action))
                return
            }
            switch Kind(rawValue: event) {
            case .incident: record = .incident(try IncidentRecord(from: decoder))
            case .hits: record = .hits(try HitsRecord(from: decoder))
            case .verdict: record = .verdict(try VerdictRecord(from: decoder))
            case .context: record = .context(try ContextRecord(from: decoder))
            case .lost: record = .lost(try LostRecord(from: decoder))
            case .truncated: record = .truncated(try TruncatedRecord(from: decoder))
            case nil:
                throw DecodingError.dataCorruptedError(
                    forKey: .event,
                    in: c,
                    debugDescription: "unknown event \(event)"
                )
            }
        }
    }
}
