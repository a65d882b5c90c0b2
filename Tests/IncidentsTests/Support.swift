import Foundation
import Logging
import Pipeline
import Synchronization
import SystemSupport
import TestSupport
import Testing

@testable import Classifier
@testable import Incidents
@testable import LogFormats

extension IncidentLog {
    /// A record from text: critical (written and fsync'd at once) or not.
    func append(_ object: String, urgent: Bool) {
        append(bytes: Array(object.utf8), durability: urgent ? .now : .interval)
    }
}

/// An incident log at `path`, opened and writing (fsyncs every 50 ms).
func startedLog(_ path: String, headInterval: Double = 3600, logger: Logger) throws -> IncidentLog {
    let log = IncidentLog(path: path, syncInterval: 0.05, headInterval: headInterval, logger: logger)
    try log.open()
    log.start()
    return log
}

/// Keeps what a logger is given (for asserting on esafetyd's own log).
final class CapturedLog: LogHandler, @unchecked Sendable {
    private let lines = Mutex<[String]>([])
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let text = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
            separator: " "
        )
        lines.withLock { $0.append("\(event.level) \(event.message) \(text)") }
    }
    var messages: [String] { lines.withLock { $0 } }
}

/// Runs matches through a sink into a fresh log: the lines written.
func sinkLines(_ matches: [MatchedRequest], policy: Policy = Policy()) throws -> [String] {
    let path = tempPath() + ".jsonl"
    defer { for f in [path, path + ".chain"] { try? FileManager.default.removeItem(atPath: f) } }
    let log = try startedLog(path, logger: Logger(label: "test"))
    let sink = IncidentSink(log: log, policy: policy, suffixes: PublicSuffix(text: "com\nuk\nco.uk\n"))
    for m in matches { sink.accept(m) }
    sink.closeAll()
    log.stop()
    return lines(path)
}

/// The same, each line as JSON.
func sinkRecords(_ matches: [MatchedRequest], policy: Policy = Policy()) throws -> [[String: Any]] {
    try sinkLines(matches, policy: policy).map(json)
}
