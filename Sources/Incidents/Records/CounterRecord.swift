import Classifier
import Foundation
import SystemSupport

/// One line of esafetyd's counters file (`counters.jsonl` in the state folder), which the
/// report reads for monitoring health: a source's counts over the interval that ends at
/// `time`, or a `start`, `stop`, `reload` or `alert` event. Written by the daemon's counter
/// recorder and read by the report through this one type.
///
/// {"time":"…","source":"ingest:pid
/// 812","interval":60,"received":1200,"parsed":1198,"matched":3,"malformed":2,"too_long":0}
///     {"event":"reload","time":"…","generation":2,"ok":true,"seconds":0.7,"message":"…"}
public enum CounterRecord: Sendable, Equatable {
    public struct Counts: Sendable, Equatable, Codable {
        public var time: String
        public var source: String
        /// Seconds the counts cover (ending at `time`).
        public var interval: Double
        public var received: Int
        public var parsed: Int
        public var matched: Int
        public var malformed: Int
        public var tooLong: Int

        enum CodingKeys: String, CodingKey {
            case time, source, interval, received, parsed, matched, malformed
            case tooLong = "too_long"
        }

        public init(
            time: String,
            source: String,
            interval: Double,
            received: Int,
            parsed: Int,
            matched: Int,
            malformed: Int,
            tooLong: Int
        ) {
            (self.time, self.source, self.interval, self.received) = (time, source, interval, received)
            (self.parsed, self.matched, self.malformed, self.tooLong) = (parsed, matched, malformed, tooLong)
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                time: try c.decode(String.self, forKey: .time),
                source: try c.decode(String.self, forKey: .source),
                interval: c.lenient(Double.self, .interval) ?? 60,
                received: c.lenient(Int.self, .received) ?? 0,
                parsed: c.lenient(Int.self, .parsed) ?? 0,
                matched: c.lenient(Int.self, .matched) ?? 0,
                malformed: c.lenient(Int.self, .malformed) ?? 0,
                tooLong: c.lenient(Int.self, .tooLong) ?? 0
            )
        }
    }

    public struct Reload: Sendable, Equatable, Codable {
        public var time: String
        public var generation: Int
        public var ok: Bool
        public var seconds: Double
        public var message: String

        public init(time: String, generation: Int, ok: Bool, seconds: Double, message: String) {
            (self.time, self.generation, self.ok, self.seconds, self.message) = (time, generation, ok, seconds, message)
        }
    }

    public struct Alert: Sendable, Equatable, Codable {
        public var time: String
        public var command: String
        public var ok: Bool
        public var error: String?

        public init(time: String, command: String, ok: Bool, error: String?) {
            (self.time, self.command, self.ok, self.error) = (time, command, ok, error)
        }
    }

    case counts(Counts)
    case start(time: String, pid: Int?)
    case stop(time: String)
    case reload(Reload)
    case alert(Alert)

    public var time: String {
        switch self {
        case .counts(let c): c.time
        case .start(let time, _), .stop(let time): time
        case .reload(let r): r.time
        case .alert(let a): a.time
        }
    }

    /// The line as written (without its newline).
    public var text: String {
        var j = JSONText()
        j.beginObject()
        switch self {
        case .counts(let c):
            j.field("time", .string(c.time))
            j.field("source", .string(c.source))
            j.field("interval", .double(c.interval))
            j.field("received", .int(c.received))
            j.field("parsed", .int(c.parsed))
            j.field("matched", .int(c.matched))
            j.field("malformed", .int(c.malformed))
            j.field("too_long", .int(c.tooLong))
        case .start(let time, let pid):
            j.field("event", .string("start"))
            j.field("time", .string(time))
            if let pid { j.field("pid", .int(pid)) }
        case .stop(let time):
            j.field("event", .string("stop"))
            j.field("time", .string(time))
        case .reload(let r):
            j.field("event", .string("reload"))
            j.field("time", .string(r.time))
            j.field("generation", .int(r.generation))
            j.field("ok", .bool(r.ok))
            j.field("seconds", .double(r.seconds))
            j.field("message", .string(r.message))
        case .alert(let a):
            j.field("event", .string("alert"))
            j.field("time", .string(a.time))
            j.field("command", .string(a.command))
            j.field("ok", .bool(a.ok))
            if let e = a.error { j.field("error", .string(e)) }
        }
        j.endObject()
        return j.text
    }

    /// Reads one line; nil for a line that is not one (a partial line, an unknown event).
    public init?(line: some StringProtocol) {
        guard let d = try? Self.decoder.decode(Decoded.self, from: Data(line.utf8)) else { return nil }
        self = d.record
    }

    private static let decoder = JSONDecoder()

    private struct Decoded: Decodable {
        var record: CounterRecord
        enum Keys: String, CodingKey { case event, time, pid }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            switch c.lenient(String.self, .event) {
            case nil: record = .counts(try Counts(from: decoder))
            case "start":
                record = .start(time: try c.decode(String.self, forKey: .time), pid: c.lenient(Int.self, .pid))
            case "stop": record = .stop(time: try c.decode(String.self, forKey: .time))
            case "reload": record = .reload(try Reload(from: decoder))
            case "alert": record = .alert(try Alert(from: decoder))
            case let other?:
                throw DecodingError.dataCorruptedError(
                    forKey: .event,
                    in: c,
                    debugDescription: "unknown event \(other)"
                )
            }
        }
    }
}
