import Classifier
import Foundation
import Incidents
import LogFormats
import SystemSupport

/// The nightly report for the e-safety coordinator, the DSL, senior leaders and governors.
/// Built only from the incident log and the daemon's persisted counters, so it runs after
/// a restart, on a copy of the files, or on another machine; the same input and window
/// always give the same output.
public struct Report: Sendable {
    public struct Options: Sendable {
        public var since: Double
        public var until: Double
        /// People become "person 1", "person 2"... (by number of incidents); clients are hidden.
        public var anonymise = false
        /// A source quiet for longer than this (seconds) is a silent period.
        public var silence = 1800.0
        /// Seconds east of UTC, for the hours shown.
        public var utcOffset = 0
        public var title = "E-safety report"

        public init(since: Double, until: Double) {
            self.since = since
            self.until = until
        }
    }

    public struct Row: Sendable {
        public var id: String
        public var time: Double
        public var severity: String
        public var category: String
        /// The category's name for people (`Self-harm`).
        public var categoryName: String
        public var group: String
        public var person: String
        public var client: String
        public var host: String
        /// The search the pupil typed, when the URL was a search engine's (nil in an
        /// anonymised report: a search can name a child).
        public var searchTerm: String?
        /// An anonymised report's row whose search was left out.
        public var searchWithheld = false
        /// `blocked` (and by whom), `allowed` or `unknown`: did the pupil reach it.
        public var action: String
        public var hits: Int
        public var state: String
        public var due: Double?
        public var acknowledged: Double?
        public var closed: Double?
        public var outcome: String?
        public var escalatedTo: [String]
        public var overdue: Bool
    }

    public struct Silence: Sendable {
        public var source: String
        public var from: Double
        public var to: Double
    }
    public struct Count: Sendable {
        public var name: String
        public var count: Int
    }

    public var options: Options
    /// Incidents opened in the window, oldest first.
    public var new: [Row] = []
    /// Open at the end of the window (whenever opened), oldest first.
    public var open: [Row] = []
    var bySeverity: [Count] = []
    var byCategory: [Count] = []
    var byGroup: [Count] = []
    /// Category x severity counts of new incidents.
    var categorySeverity: [String: [String: Int]] = [:]
    /// Category -> its name for people, for the categories in the report.
    var categoryNames: [String: String] = [:]
    public var topSites: [Count] = []
    var topPeople: [Count] = []
    var escalations: [Count] = []
    var referrals = 0
    public var outcomes: [Count] = []
    var falsePositives = 0
    /// Seconds to first response and to closing, of incidents opened in the window.
    var toAcknowledge: [Double] = []
    var toResolve: [Double] = []
    var acknowledgedInTime = 0
    var withDeadline = 0
    /// Lines received per source per hour of the window.
    var linesByHour: [String: [Int]] = [:]
    var incidentsByHour: [Int] = []
    public var received = 0
    public var malformed = 0
    public var matched = 0
    var silences: [Silence] = []
    /// Periods the daemon was not running (stop to start).
    var downtime: [Silence] = []
    public var reloads = 0
    var failedReloads: [String] = []
    public var generation: Int?
    var alertsSent = 0
    var alertFailures: [String] = []
    public var counterRows = 0
    /// The incident log's hash chain as it stood when the report was made (`esafety
    /// verify`): the report carries the head out of the log, so a later `verify --head`
    /// can show that nothing up to it was removed.
    public var integrity: Integrity?

    public struct Integrity: Sendable {
        public var checked: Int
        public var files: Int
        public var head: String?
        /// The first failure, as `esafety verify` names it.
        public var broken: String?

        /// Verifies a log and its rotations (LOG.N ... LOG.1, LOG).
        public init(log path: String) {
            let files = IncidentStore.withRotations(path)
            self.files = files.count
            do {
                let v = try HashChain.check(paths: files)
                (checked, head, broken) = (v.checked, v.head?.chain, v.failure?.description)
            } catch {
                (checked, head, broken) = (0, nil, "\(error.path): cannot read: \(error)")
            }
        }

        public var summary: String {
            if let broken {
                return
                    "INCIDENT LOG CHAIN BROKEN: \(broken) (\(checked) line(s) before it verified; see esafety verify)"
            }
            return
                "incident log: \(checked) line(s) in \(files) file(s) verified; chain head \(head ?? "none") (keep "
                + "it: esafety verify --head shows any later removal)"
        }
    }

    public static let severities = ["critical", "high", "medium", "low", "info"]

    /// Parses an RFC 3339 time as written in the logs.
    public static func epoch(_ s: String?) -> Double? {
        guard var s else { return nil }
        return s.withUTF8 { utc.rfc3339(UnsafeRawBufferPointer($0), at: 0)?.0 }
    }

    /// Times without a zone are read as UTC (the logs write `Z`).
    static let utc = LogTime(localOffset: 0)

    var hours: Int { max(1, Int(((options.until - options.since) / 3600).rounded(.up))) }

    public init(views: [IncidentView], counters: [CounterRecord], options: Options) {
        self.options = options
        let since = options.since
        let until = options.until
        incidentsByHour = Array(repeating: 0, count: hours)
        var people: [String: Int] = [:]
        var sites: [String: Int] = [:]
        var escalatedTo: [String] = []
        var outcomeNames: [String] = []
        let sinceText = Clock.rfc3339(since)
        let untilText = Clock.rfc3339(until)
        for v in views {
            guard let t = Self.epoch(v.time), t < until else { continue }
            // The state as of the end of the period: only events before it count.
            let w = Workflow.replay(v.actions, before: untilText)
            for e in w.applied where e.time >= sinceText {
                switch e.action {
                case .escalate:
                    escalatedTo.append(e.to ?? "unknown")
                    if e.referral != nil { referrals += 1 }
                case .resolve: outcomeNames.append(e.outcome ?? "unknown")
                case .falsePositive: falsePositives += 1
                default: break
                }
            }
            let state = w.state
            let ack = Self.epoch(w.acknowledgedAt)
            let closed = Self.epoch(w.closedAt)
            let due = Self.epoch(v.due)
            let row = Row(
                id: v.id,
                time: t,
                severity: v.severity?.description ?? "",
                category: v.category,
                categoryName: v.record.categoryName ?? Self.displayName(v.category),
                group: v.group,
                person: v.person,
                client: v.record.client,
                host: v.host,
                searchTerm: v.record.searchTerm,
                action: v.record.blockedBy.map { "\(v.record.action) (\($0))" } ?? v.record.action,
                hits: v.hits,
                state: state.rawValue,
                due: due,
                acknowledged: ack,
                closed: closed,
                outcome: w.outcome,
                escalatedTo: w.escalatedTo,
                overdue: state == .new && due.map { $0 < until } == true
            )
            categoryNames[row.category] = row.categoryName
            if t >= since {
                new.append(row)
                people[row.person, default: 0] += 1
                sites[row.host, default: 0] += 1
                categorySeverity[row.category, default: [:]][row.severity, default: 0] += 1
                incidentsByHour[min(hours - 1, Int((t - since) / 3600))] += 1
                if let ack { toAcknowledge.append(ack - t) }
                if let closed { toResolve.append(closed - t) }
                if let due {
                    withDeadline += 1
                    if let ack, ack <= due { acknowledgedInTime += 1 }
                }
            }
            if state != .resolved && state != .falsePositive { open.append(row) }
        }
        new.sort { ($0.time, $0.id) < ($1.time, $1.id) }
        open.sort { ($0.time, $0.id) < ($1.time, $1.id) }
        func counted(_ names: [String]) -> [Count] {
            Dictionary(grouping: names, by: { $0 }).map { Count(name: $0.key, count: $0.value.count) }
                .sorted { ($1.count, $0.name) < ($0.count, $1.name) }
        }
        bySeverity = Self.severities.compactMap { s in
            let n = new.filter { $0.severity == s }.count
            return n > 0 ? Count(name: s, count: n) : nil
        }
        byCategory = counted(new.map(\.category))
        byGroup = counted(new.map(\.group))
        escalations = counted(escalatedTo)
        outcomes = counted(outcomeNames)
        topSites = Array(
            sites.map { Count(name: $0.key, count: $0.value) }.sorted { ($1.count, $0.name) < ($0.count, $1.name) }
                .prefix(10)
        )
        let ranked = people.map { Count(name: $0.key, count: $0.value) }.sorted {
            ($1.count, $0.name) < ($0.count, $1.name)
        }
        topPeople = Array(ranked.prefix(10))
        if options.anonymise {
            // Pseudonyms by rank among everyone the report names (new and open incidents).
            var names: [String: String] = [:]
            for (i, p) in ranked.enumerated() { names[p.name] = "person \(i + 1)" }
            for r in open where names[r.person] == nil { names[r.person] = "person \(names.count + 1)" }
            func hide(_ r: Row) -> Row {
                var r = r
                r.person = names[r.person] ?? "person"
                r.client = ""
                // A search can name a child, a friend or a place: not in a governors' report.
                r.searchWithheld = r.searchTerm != nil
                r.searchTerm = nil
                return r
            }
            new = new.map(hide)
            open = open.map(hide)
            topPeople = topPeople.map { Count(name: names[$0.name] ?? "person", count: $0.count) }
        }
        toAcknowledge.sort()
        toResolve.sort()
        monitoring(counters)
    }

    private mutating func monitoring(_ counters: [CounterRecord]) {
        let since = options.since
        let until = options.until
        let hours = self.hours
        var active: [String: [(Double, Double)]] = [:]
        var sources = Set<String>()
        var lastStop: Double?
        var running = false
        /// Whether esafetyd had started before the period, and its first start within it:
        /// before that, nothing could have been heard, so no source was "silent".
        var startedBefore = false
        var firstStart: Double?
        for c in counters {
            guard let t = Self.epoch(c.time) else { continue }
            switch c {
            case .start:
                if t < since { startedBefore = true } else if firstStart == nil { firstStart = t }
                // A gap under a minute (a quick restart) is not "not running".
                if let s = lastStop, t > since, s < until, min(t, until) - max(s, since) >= 60 {
                    downtime.append(Silence(source: "esafetyd", from: max(s, since), to: min(t, until)))
                }
                lastStop = nil
                running = true
            case .stop:
                lastStop = t
                running = false
            case .reload(let r) where t >= since && t < until:
                reloads += 1
                if r.ok { generation = max(generation ?? 0, r.generation) }
                if !r.ok { failedReloads.append("\(Self.clock(t, options.utcOffset)) \(r.message)") }
            case .alert(let a) where t >= since && t < until:
                if a.ok {
                    alertsSent += 1
                } else {
                    alertFailures.append("\(Self.clock(t, options.utcOffset)) \(a.command) \(a.error ?? "")")
                }
            case .reload, .alert: break
            case .counts(let counts):
                let source = counts.source
                sources.insert(source)
                // A counter line counts the interval that ends at its time.
                let start = t - counts.interval
                guard start >= since - 1 && start < until else { continue }
                counterRows += 1
                let n = counts.received
                let hour = max(0, Int((start - since) / 3600))
                if hour < hours {
                    linesByHour[source, default: Array(repeating: 0, count: hours)][hour] += n
                }
                received += n
                malformed += counts.malformed
                matched += counts.matched
                if n > 0 { active[source, default: []].append((start, t)) }
            }
        }
        if let s = lastStop, !running, s < until, until - max(s, since) >= 60 {
            downtime.append(Silence(source: "esafetyd", from: max(s, since), to: until))
        }
        let listening = startedBefore ? since : min(until, max(since, firstStart ?? since))
        for source in sources.sorted() {
            linesByHour[source] = linesByHour[source] ?? Array(repeating: 0, count: hours)
            var previous = listening
            for (start, end) in (active[source] ?? []).sorted(by: { $0.0 < $1.0 }) + [(until, until)] {
                if start - previous > options.silence {
                    silences.append(Silence(source: source, from: previous, to: min(start, until)))
                }
                previous = max(previous, end)
            }
        }
    }

    // MARK: - Formatting helpers

    static func clock(_ t: Double, _ offset: Int) -> String {
        let s = Clock.rfc3339(t + Double(offset))
        return String(s.dropFirst(11).prefix(5))
    }

    func dateTime(_ t: Double) -> String {
        let s = Clock.rfc3339(t + Double(options.utcOffset))
        return String(s.prefix(10)) + " " + String(s.dropFirst(11).prefix(5))
    }

    static func duration(_ seconds: Double) -> String {
        let m = Int((seconds / 60).rounded())
        if m < 60 { return "\(m) min" }
        let h = m / 60
        if h < 48 { return m % 60 == 0 ? "\(h) h" : "\(h) h \(m % 60) min" }
        return "\(h / 24) d \(h % 24) h"
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    var offsetLabel: String {
        let o = options.utcOffset
        if o == 0 { return "UTC" }
        let sign = o < 0 ? "-" : "+"
        let a = abs(o)
        return "UTC\(sign)\(a / 3600 < 10 ? "0" : "")\(a / 3600):\((a % 3600) / 60 < 10 ? "0" : "")\((a % 3600) / 60)"
    }

    /// A category's name for people when the record has none: the default taxonomy's, also
    /// for a foreign list's folder that maps onto it (`adult` -> Pornography); else the name.
    static func displayName(_ category: String) -> String {
        DefaultTaxonomy.category(named: category)?.displayName
            ?? DefaultTaxonomy.category(named: CategoryMapping.name(forFolder: category))?.displayName ?? category
    }

    func name(_ category: String) -> String { categoryNames[category] ?? Self.displayName(category) }

    var windowLabel: String { "\(dateTime(options.since)) to \(dateTime(options.until)) (\(offsetLabel))" }

    var parseErrorRate: Double { received == 0 ? 0 : Double(malformed) / Double(received) }
}

// MARK: - Text

extension Report {
    /// Plain text that fits in an email.
    public var text: String {
        var out = "\(options.title)\n\(windowLabel)\n\n"
        func line(_ s: String = "") { out += Terminal.escape(s) + "\n" }
        line("NEW INCIDENTS: \(new.count)")
        if !bySeverity.isEmpty {
            line("  by severity: " + bySeverity.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        }
        if !byCategory.isEmpty {
            line("  by category: " + byCategory.map { "\(name($0.name)) \($0.count)" }.joined(separator: ", "))
        }
        if !byGroup.isEmpty {
            line("  by group:    " + byGroup.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        }
        line()
        let overdue = open.filter(\.overdue)
        let escalated = open.filter { $0.state == "escalated" }
        line("OPEN AT THE END: \(open.count) (overdue \(overdue.count), escalated \(escalated.count))")
        for r in open {
            let flag = r.overdue ? "OVERDUE " : ""
            line(
                "  \(flag)\(r.severity) \(r.categoryName) \(r.group) \(r.person) \(r.host)"
                    + "\(r.searchTerm.map { " search \"\($0)\"" } ?? "") \(r.action) - \(r.state), age "
                    + "\(Self.duration(options.until - r.time))\(r.due.map { ", due \(dateTime($0))" } ?? "") [\(r.id)]"
            )
        }
        line()
        if !topSites.isEmpty {
            line("TOP SITES: " + topSites.map { "\($0.name) (\($0.count))" }.joined(separator: ", "))
        }
        if !topPeople.isEmpty {
            line("TOP PEOPLE: " + topPeople.map { "\($0.name) (\($0.count))" }.joined(separator: ", "))
        }
        line()
        line(
            "ESCALATIONS: "
                + (escalations.isEmpty ? "none" : escalations.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
                + (referrals > 0 ? "; referrals outside school: \(referrals)" : "")
        )
        line(
            "OUTCOMES: "
                + (outcomes.isEmpty && falsePositives == 0
                    ? "none"
                    : (outcomes.map { "\($0.name) \($0.count)" }
                        + (falsePositives > 0 ? ["false-positive \(falsePositives)"] : [])).joined(separator: ", "))
        )
        line("RESPONSE: " + responseSummary)
        line()
        line("MONITORING")
        line(
            "  lines received \(received), matched \(matched), malformed \(malformed) "
                + "(\(String(format: "%.2f", parseErrorRate * 100))%)"
        )
        for (source, counts) in linesByHour.sorted(by: { $0.key < $1.key }) {
            line(
                "  \(source): \(counts.reduce(0, +)) lines; by hour: " + counts.map(String.init).joined(separator: " ")
            )
        }
        if silences.isEmpty { line("  silent periods over \(Self.duration(options.silence)): none") }
        for s in silences {
            line("  SILENT: \(s.source) \(dateTime(s.from)) to \(dateTime(s.to)) (\(Self.duration(s.to - s.from)))")
        }
        for d in downtime {
            line("  NOT RUNNING: esafetyd \(dateTime(d.from)) to \(dateTime(d.to)) (\(Self.duration(d.to - d.from)))")
        }
        if counterRows == 0 { line("  no monitoring counters for this period: was esafetyd running?") }
        let generationText = generation.map { ", generation \($0)" } ?? ""
        let failedText =
            failedReloads.isEmpty
            ? "" : ", FAILED \(failedReloads.count): " + failedReloads.joined(separator: "; ")
        line("  list reloads \(reloads)\(generationText)\(failedText)")
        line(
            "  alerts sent \(alertsSent), failed "
                + "\(alertFailures.count)\(alertFailures.isEmpty ? "" : ": " + alertFailures.joined(separator: "; "))"
        )
        if let integrity { line("  " + integrity.summary) }
        return out
    }

    var responseSummary: String {
        var parts: [String] = []
        if let m = Self.percentile(toAcknowledge, 0.5) {
            parts.append("median time to acknowledge \(Self.duration(m))")
        }
        if let m = Self.percentile(toResolve, 0.5) { parts.append("median time to resolve \(Self.duration(m))") }
        if withDeadline > 0 { parts.append("acknowledged by the deadline \(acknowledgedInTime) of \(withDeadline)") }
        return parts.isEmpty ? "no responses yet to this period's incidents" : parts.joined(separator: "; ")
    }
}

// MARK: - JSON and CSV

extension Report {
    public var json: String {
        var j = JSONText(capacity: 4096)
        func counts(_ key: String, _ list: [Count]) {
            j.key(key)
            j.beginObject()
            for c in list { j.field(c.name, .int(c.count)) }
            j.endObject()
        }
        func time(_ t: Double?) -> JSONText.Value { t.map { .string(Clock.rfc3339($0)) } ?? .null }
        func rows(_ key: String, _ list: [Row]) {
            j.key(key)
            j.beginArray()
            for r in list {
                j.beginObject()
                j.field("id", .string(r.id))
                j.field("time", time(r.time))
                j.field("severity", .string(r.severity))
                j.field("category", .string(r.category))
                j.field("category_name", .string(r.categoryName))
                j.field("group", .string(r.group))
                j.field("person", .string(r.person))
                if !options.anonymise { j.field("client", .string(r.client)) }
                j.field("host", .string(r.host))
                if !options.anonymise { j.field("search_term", r.searchTerm) }
                j.field("action", .string(r.action))
                j.field("hits", .int(r.hits))
                j.field("state", .string(r.state))
                j.field("due", time(r.due))
                j.field("acknowledged", time(r.acknowledged))
                j.field("closed", time(r.closed))
                j.field("outcome", r.outcome)
                j.field("overdue", .bool(r.overdue))
                j.field("age_seconds", .int(Int(options.until - r.time)))
                j.endObject()
            }
            j.endArray()
        }
        j.beginObject()
        j.field("title", .string(options.title))
        j.field("since", time(options.since))
        j.field("until", time(options.until))
        j.field("anonymised", .bool(options.anonymise))
        j.field("new_incidents", .int(new.count))
        counts("by_severity", bySeverity)
        counts("by_category", byCategory)
        counts("by_group", byGroup)
        rows("new", new)
        rows("open", open)
        j.field("overdue", .int(open.filter(\.overdue).count))
        j.field("escalated", .int(open.filter { $0.state == "escalated" }.count))
        counts("top_sites", topSites)
        counts("top_people", topPeople)
        counts("escalations", escalations)
        j.field("referrals", .int(referrals))
        counts("outcomes", outcomes)
        j.field("false_positives", .int(falsePositives))
        j.key("response")
        j.beginObject()
        j.field("median_seconds_to_acknowledge", Self.percentile(toAcknowledge, 0.5).map { .int(Int($0)) } ?? .null)
        j.field("p90_seconds_to_acknowledge", Self.percentile(toAcknowledge, 0.9).map { .int(Int($0)) } ?? .null)
        j.field("median_seconds_to_resolve", Self.percentile(toResolve, 0.5).map { .int(Int($0)) } ?? .null)
        j.field("acknowledged_by_deadline", .int(acknowledgedInTime))
        j.field("with_deadline", .int(withDeadline))
        j.endObject()
        j.key("monitoring")
        j.beginObject()
        j.field("lines_received", .int(received))
        j.field("lines_matched", .int(matched))
        j.field("lines_malformed", .int(malformed))
        j.key("lines_by_hour")
        j.beginObject()
        for (source, counts) in linesByHour.sorted(by: { $0.key < $1.key }) {
            j.key(source)
            j.beginArray()
            for c in counts { j.value(.int(c)) }
            j.endArray()
        }
        j.endObject()
        j.key("incidents_by_hour")
        j.beginArray()
        for c in incidentsByHour { j.value(.int(c)) }
        j.endArray()
        j.key("silent_periods")
        j.beginArray()
        for s in silences {
            j.beginObject()
            j.field("source", .string(s.source))
            j.field("from", time(s.from))
            j.field("to", time(s.to))
            j.endObject()
        }
        j.endArray()
        j.key("not_running")
        j.beginArray()
        for s in downtime {
            j.beginObject()
            j.field("from", time(s.from))
            j.field("to", time(s.to))
            j.endObject()
        }
        j.endArray()
        j.field("reloads", .int(reloads))
        j.field("generation", generation.map { .int($0) } ?? .null)
        j.key("failed_reloads")
        j.beginArray()
        for f in failedReloads { j.value(.string(f)) }
        j.endArray()
        j.field("alerts_sent", .int(alertsSent))
        j.key("alert_failures")
        j.beginArray()
        for f in alertFailures { j.value(.string(f)) }
        j.endArray()
        if let integrity {
            j.key("incident_log")
            j.beginObject()
            j.field("verified_lines", .int(integrity.checked))
            j.field("files", .int(integrity.files))
            j.field("chain_head", integrity.head)
            j.field("broken", integrity.broken)
            j.endObject()
        }
        j.endObject()
        j.endObject()
        return j.text + "\n"
    }

    /// One row per incident opened in the window, for a spreadsheet.
    public var csv: String {
        func cell(_ s: String) -> String {
            var s = Terminal.escape(s)
            // Spreadsheets run cells that start with these as formulas.
            if let f = s.first, "=+-@".contains(f) { s = "'" + s }
            return s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var out =
            "id,time,severity,category,category_name,group,person,client,site,search_term,action,hits,state,due,"
            + "acknowledged,closed,outcome,overdue\r\n"
        for r in new {
            let fields = [
                r.id, Clock.rfc3339(r.time), r.severity, r.category, r.categoryName, r.group, r.person, r.client,
                r.host, r.searchTerm ?? "", r.action, String(r.hits), r.state,
                r.due.map(Clock.rfc3339) ?? "", r.acknowledged.map(Clock.rfc3339) ?? "",
                r.closed.map(Clock.rfc3339) ?? "",
                r.outcome ?? "", r.overdue ? "yes" : "no",
            ]
            out += fields.map(cell).joined(separator: ",") + "\r\n"
        }
        return out
    }
}
