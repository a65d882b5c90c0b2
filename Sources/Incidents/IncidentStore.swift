import Classifier
import Foundation
import LogFormats
import SystemSupport

/// Reads incident logs and folds each incident's later events into one view, for
/// `esafety incidents tail | list | show` and the report.
public struct IncidentView: Sendable {
    public enum State: String, Sendable {
        case new, acknowledged, escalated, resolved
        case falsePositive = "false-positive"
    }

    /// The incident line, typed.
    public var record: IncidentRecord
    /// The incident line as written.
    public var line: String
    /// Later lines that name this incident (hits, context, workflow actions), oldest first.
    public var events: [LogRecord] = []
    public var hits: Int
    public var lastSeen: String
    /// The workflow events replayed (`Workflow.replay`).
    public var workflow = Workflow.Replay()
    /// The school it came from, when read from a trust's central store (nil: this school's log).
    public var site: String?

    public init(record: IncidentRecord, line: String) {
        (self.record, self.line, self.hits, self.lastSeen) = (record, line, record.hits, record.lastSeen.text)
    }

    /// An incident as a list shows it: its own line, its workflow state as a store keeps it,
    /// and its latest `hits` and `verdict` lines (nil: none), without the rest of its history:
    /// the record, state, hits, last seen and due as a full fold gives them, and no `events`.
    public static func summary(line: String, state: String, hits: String?, verdict: String?) -> IncidentView? {
        guard case .incident(let incident) = LogRecord(line: line) else { return nil }
        var v = IncidentView(record: incident, line: line)
        v.workflow.state = State(rawValue: state) ?? .new
        if let hits, case .hits(let h) = LogRecord(line: hits) { (v.hits, v.lastSeen) = (h.hits, h.lastSeen.text) }
        if let verdict, case .verdict(let r) = LogRecord(line: verdict) {
            (v.record.action, v.record.blockedBy) = (r.action, r.blockedBy)
        }
        return v
    }

    public var id: String { record.id }
    public var state: State { workflow.state }
    public var acknowledgedAt: String? { workflow.acknowledgedAt }
    public var closedAt: String? { workflow.closedAt }
    public var escalatedTo: [String] { workflow.escalatedTo }
    public var outcome: String? { workflow.outcome }

    public var time: String { record.time.text }
    public var severity: Severity? { record.severity }
    public var category: String { record.category }
    public var group: String { record.group }
    public var person: String { record.person }
    public var host: String { record.host }
    public var due: String? { record.due?.text }

    /// The workflow actions recorded for this incident, oldest first.
    public var actions: [ActionRecord] {
        events.compactMap { if case .action(let a) = $0 { a } else { nil } }
    }

    /// The context lines (the person's categorised requests either side), oldest first.
    public var context: [ContextRecord] {
        events.compactMap { if case .context(let c) = $0 { c } else { nil } }
    }

    /// Past its due time without acknowledgement.
    public func overdue(now: String) -> Bool {
        guard state == .new, let due else { return false }
        return due < now
    }

    public var isOpen: Bool { state != .resolved && state != .falsePositive }
}

public enum IncidentStore {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// A file and its uncompressed rotations, oldest first: `FILE.N` ... `FILE.1`, `FILE`;
    /// and any `FILE.recovered-<time>` (the lines of a log deleted while esafetyd wrote it,
    /// which it copied out) where its chain goes on: before the file whose first line
    /// names the copy's last chain value as `prev`, else just before `FILE`.
    public static func withRotations(_ path: String) -> [String] {
        var files = [path]
        var n = 1
        while FileSystem.exists("\(path).\(n)") {
            files.insert("\(path).\(n)", at: 0)
            n += 1
        }
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let prefix = (slash.map { String(path[path.index(after: $0)...]) } ?? path) + ".recovered-"
        let recovered = ((try? FileSystem.listDirectory(folder.isEmpty ? "/" : folder)) ?? []).filter {
            $0.hasPrefix(prefix)
        }.sorted()
        for name in recovered {
            let file = slash == nil ? name : folder + "/" + name
            let last = IncidentLog.lastChainValue(ofFile: file)
            let next = last.flatMap { chain in files.firstIndex { firstPrevious(ofFile: $0) == chain } }
            files.insert(file, at: next ?? files.count - 1)
        }
        return files
    }

    /// The `prev` value on a file's first line (where it says which chain value it follows).
    static func firstPrevious(ofFile path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 1 << 16)
        let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        let line = head[0..<n].split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false)[0]
        return HashChain.field(Substring(String(decoding: line, as: UTF8.self)), "prev")
    }

    /// Reads a log and its uncompressed rotations (`LOG.N` ... `LOG.1`, oldest first).
    /// `context`: false leaves the context lines out (a list and a report do not show them, and
    /// they are most of a busy log's bytes), unread.
    public static func load(
        _ path: String,
        group: String? = nil,
        context: Bool = true
    ) throws(Failure) -> [IncidentView] {
        var text = ""
        for f in withRotations(path) {
            // A file ending in a partial line (a writer killed mid-write) must not join it
            // to the next file's first line: it stays a line of its own, and is skipped.
            do {
                text += try FileSystem.readText(f)
                if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
            } catch {
                if error.errno == EACCES || error.errno == EPERM {
                    throw Failure(
                        description:
                            "you may not read incidents: \(f) is for members of the group "
                            + "\(group ?? "esafety-admin") only; ask your network admin to add you"
                    )
                }
                throw Failure(description: "\(f): cannot read: \(error)")
            }
        }
        return fold(lines: text.lineSlices(), context: context)
    }

    /// Every incident in a log's text, each with its events and its state replayed.
    public static func fold(_ text: String) -> [IncidentView] { fold(lines: text.lineSlices()) }

    /// The same, from the lines already apart (an incident's lines from the index); `context`
    /// as in `load`.
    public static func fold<Lines: Sequence>(
        lines: Lines,
        context keepContext: Bool = true
    ) -> [IncidentView] where Lines.Element: StringProtocol {
        var views: [IncidentView] = []
        var index: [String: Int] = [:]
        for line in lines {
            if !keepContext && line.hasPrefix("{\"event\":\"context\"") { continue }
            guard let record = LogRecord(line: line), let id = record.id, !id.isEmpty else { continue }
            switch record {
            case .incident(let incident):
                index[id] = views.count
                views.append(IncidentView(record: incident, line: String(line)))
            case .context where !keepContext:
                continue
            case .context(let context):
                // One context event can belong to several of a person's incidents.
                for other in context.ids { if let i = index[other] { views[i].events.append(record) } }
            case .hits(let hits):
                guard let i = index[id] else { continue }
                views[i].events.append(record)
                views[i].hits = hits.hits
                views[i].lastSeen = hits.lastSeen.text
            case .verdict(let verdict):
                guard let i = index[id] else { continue }
                views[i].events.append(record)
                views[i].record.action = verdict.action
                views[i].record.blockedBy = verdict.blockedBy
            case .action, .lost, .truncated:
                guard let i = index[id] else { continue }
                views[i].events.append(record)
            }
        }
        for i in views.indices { views[i].workflow = Workflow.replay(views[i].actions) }
        return views
    }

    /// The incident an id names: the whole id, or any prefix of at least 8 characters that
    /// only one incident has (ids are 30 characters; nobody should have to type them whole).
    public static func find(_ id: String, in views: [IncidentView]) -> Result<IncidentView, Workflow.Refusal> {
        if let exact = views.last(where: { $0.id == id }) { return .success(exact) }
        guard id.count >= 8 else {
            return .failure(
                Workflow.Refusal(description: "no incident \(id) (give the whole id or at least 8 characters)")
            )
        }
        let matches = views.filter { $0.id.hasPrefix(id) }
        switch matches.count {
        case 1: return .success(matches[0])
        case 0: return .failure(Workflow.Refusal(description: "no incident \(id)"))
        default:
            let some = matches.prefix(5).map(\.id).joined(separator: ", ")
            return .failure(
                Workflow.Refusal(
                    description:
                        "\(matches.count) incidents start with \(id) (\(some)\(matches.count > 5 ? ", ..." : "")): "
                        + "give more of the id"
                )
            )
        }
    }

    /// One line per incident: time, severity, group, person, category, site, hits.
    public static func line(_ v: IncidentView, color: Bool) -> String {
        line(IncidentSummary(v), color: color)
    }

    /// One line per incident, from what a list keeps of it.
    public static func line(_ v: IncidentSummary, color: Bool) -> String {
        // By bytes, not Foundation's replacingOccurrences and padding (a tenth of a long list's
        // time each) nor Characters.
        var stamp = Array(v.time.utf8.prefix(19))
        for k in stamp.indices where stamp[k] == UInt8(ascii: "T") { stamp[k] = UInt8(ascii: " ") }
        let time = String(decoding: stamp, as: UTF8.self)
        let name = String((v.severity?.description ?? "").uppercased().prefix(8))
        var severity = name + String(repeating: " ", count: 8 - name.count)
        if color, let s = v.severity { severity = s.colored(severity) }
        let fields = [v.group, v.person, v.category, v.host].map(Terminal.escape)
        return
            "\(time)Z  \(severity)  \(fields[0])  \(fields[1])  \(fields[2])  \(fields[3])  hits \(v.hits)  "
            + "\(v.state.rawValue)  \(Terminal.escape(v.id))"
    }
}
