import Classifier
import LogFormats
import Synchronization

/// Turns matched requests into e-safety incidents: the daemon's `MatchSink`.
///
/// The first hit of (person, registrable domain, category) in a window opens an incident
/// at once; later hits add to its count, first and last seen, and a few sample URLs; when
/// the window closes, a `hits` event records the final count. A page that loads 80
/// resources is one incident, not 80.
public final class IncidentSink: MatchSink, @unchecked Sendable {
    struct Key: Hashable { var person: String; var site: String; var category: String }
    struct Open {
        var id: String
        var opened: Double
        var first: Double
        var last: Double
        var hits: Int
        var samples: [String]
    }

    let log: IncidentLog
    /// Instant alerts for new incidents, if configured.
    public let alerts: AlertDispatcher?
    /// The policy in force, frozen in a box: taking it per request is one retain, not a
    /// copy of every group, window and route table.
    final class Frozen: Sendable {
        let policy: Policy
        init(_ policy: Policy) { self.policy = policy }
    }
    private let currentPolicy: Mutex<Frozen>
    let suffixes: PublicSuffix

    var policy: Policy { currentPolicy.withLock { $0 }.policy }

    /// Applies a new policy (after a reload); open windows continue.
    public func update(policy: Policy) { currentPolicy.withLock { $0 = Frozen(policy) } }
    /// A categorised request kept for context: only matched requests (every category,
    /// including those only counted), never unmatched browsing.
    struct Seen { var time: Double; var host: String; var category: String; var searchTerm: String? }
    /// A person with a recent incident: their categorised requests until `until`.
    struct Watch { var ids: [String]; var until: Double; var seen: [Seen] }
    struct State {
        var open: [Key: Open] = [:]
        var recent: [String: [Double]] = [:]
        var counter: UInt32 = 0
        var lastSweep = 0.0
        var seen: [String: [Seen]] = [:]
        var watching: [String: Watch] = [:]
        /// Host -> registrable domain, for the hosts seen lately (a page's hosts repeat).
        var sites: [String: String] = [:]
    }
    private let state = Mutex(State())
    static let contextLimit = 50

    /// Client address (or MAC) -> device name, and (for logs without users) client address -> user.
    let devices: [String: String]
    /// Client address -> MAC, from the DHCP leases in the logs (bounded).
    private let leases = Mutex<[String: String]>([:])
    let users: [String: String]
    /// Local time's offset from UTC, for time windows.
    let utcOffset: Int

    public init(log: IncidentLog, policy: Policy, suffixes: PublicSuffix, devices: [String: String] = [:],
                users: [String: String] = [:], utcOffset: Int? = nil, alerts: AlertDispatcher? = nil) {
        self.alerts = alerts
        self.devices = devices
        self.users = users
        self.utcOffset = utcOffset ?? LogTime().localOffset
        self.log = log
        self.currentPolicy = Mutex(Frozen(policy))
        self.suffixes = suffixes
    }

    public func lease(client: String, mac: String) {
        leases.withLock { l in
            if l.count >= 100_000 { l.removeAll(keepingCapacity: true) }
            l[client] = mac
        }
    }

    public func accept(_ original: MatchedRequest) {
        var m = original
        if m.user == nil, let u = users[m.client] { m.user = u }
        guard let first = m.categories.first else { return }
        let frozen = currentPolicy.withLock { $0 }
        let person = m.user ?? m.client
        let group = frozen.policy.group(client: m.client, user: m.user)
        // The most severe category this group raises incidents for; when it raises none of
        // them, the request still counts (and is kept as context) but opens no incident.
        let raised = m.categories.first { group.raises($0.name, locked: $0.locked) }
        let primary = raised ?? first
        let categorySeverity = Severity(name: primary.severity) ?? .info

        var event: (String, Bool)? = nil
        var alert: (id: String, severity: Severity, due: Double?)? = nil
        var closed: [(Key, Open)] = []
        var context: [String] = []
        let span = frozen.policy.contextWindow
        state.withLock { s in
            let site: String
            if let known = s.sites[m.host] { site = known } else {
                site = suffixes.registrableDomain(m.host)
                if s.sites.count >= 8192 { s.sites.removeAll(keepingCapacity: true) }
                s.sites[m.host] = site
            }
            let key = Key(person: person, site: site, category: primary.name)
            // Close expired windows, sweeping at most once a second of log time.
            if abs(m.time - s.lastSweep) >= 1 {
                s.lastSweep = m.time
                for (k, o) in s.open where m.time - o.opened >= frozen.policy.deduplicationWindow {
                    closed.append((k, o))
                    s.open[k] = nil
                }
                s.recent = s.recent.filter { _, times in times.contains { m.time - $0 < frozen.policy.repetitionWindow } }
                for (p, w) in s.watching where m.time >= w.until {
                    if !w.seen.isEmpty { context.append(Self.contextEvent(ids: w.ids, span: "after", seen: w.seen, time: w.until)) }
                    s.watching[p] = nil
                }
                s.seen = s.seen.filter { _, list in list.contains { m.time - $0.time < span } }
            }
            // Context: this person's categorised requests in the hour before an incident
            // (in memory only) and the hour after one (written as `context` events).
            if span > 0 {
                let seen = Seen(time: m.time, host: m.host, category: primary.name, searchTerm: m.url.flatMap(SearchTerm.extract))
                // In place: copying a watch out and back would copy its list every time.
                if let w = s.watching[person], m.time < w.until, w.seen.count < Self.contextLimit * 4 {
                    s.watching[person]!.seen.append(seen)
                }
                s.seen[person, default: []].append(seen)
                s.seen[person]!.removeAll { m.time - $0.time >= span }
                if s.seen[person]!.count > Self.contextLimit { s.seen[person]!.removeFirst(s.seen[person]!.count - Self.contextLimit) }
            }
            guard raised != nil else { return }
            if let o = s.open[key], m.time - o.opened < frozen.policy.deduplicationWindow {
                s.open[key]!.hits += 1
                s.open[key]!.last = max(o.last, m.time)
                s.open[key]!.first = min(o.first, m.time)
                if o.samples.count < 5, let url = m.url, !o.samples.contains(url) { s.open[key]!.samples.append(url) }
                return
            }
            // Repetition: hits of this category by this person within the window.
            let rkey = person + "\u{0}" + primary.name
            var times = s.recent[rkey, default: []].filter { m.time - $0 < frozen.policy.repetitionWindow }
            times.append(m.time)
            s.recent[rkey] = times
            let repeated = times.count >= frozen.policy.repetitionHits
            let window = frozen.policy.window(for: group, time: m.time, utcOffset: utcOffset)
            let severity = frozen.policy.severity(category: categorySeverity, locked: primary.locked, group: group, repeated: repeated, window: window)
            guard severity >= group.minimumSeverity || primary.locked else { return }
            s.counter &+= 1
            let id = Self.id(time: m.time, counter: s.counter)
            s.open[key] = Open(id: id, opened: m.time, first: m.time, last: m.time, hits: 1, samples: m.url.map { [$0] } ?? [])
            let mac = leases.withLock { $0[m.client] }
            let device = devices[m.client] ?? mac.flatMap { devices[$0] }
            event = (Self.record(id: id, m: m, primary: primary, severity: severity, group: group, policy: frozen.policy,
                                 repeated: repeated, window: window, device: device, mac: mac), severity >= .high)
            alert = (id, severity, frozen.policy.deadlines[severity].map { m.time + $0 })
            if span > 0 {
                if let w = s.watching[person], m.time < w.until {
                    // Already watched after an earlier incident: that hour's context covers
                    // this one too; one `after` event will name both.
                    if w.ids.count < 100 { s.watching[person]!.ids.append(id) }
                } else {
                    let before = Array((s.seen[person] ?? []).dropLast())
                    if !before.isEmpty { context.append(Self.contextEvent(ids: [id], span: "before", seen: before, time: m.time)) }
                    s.watching[person] = Watch(ids: [id], until: m.time + span, seen: [])
                }
            }
        }
        for (_, o) in closed where o.hits > 1 { log.append(Self.hitsEvent(o), urgent: false) }
        if let (text, urgent) = event {
            log.append(text, urgent: urgent)
            if let alerts, let alert {
                alerts.incident(text, id: alert.id, severity: alert.severity, person: person, category: primary.name, due: alert.due)
            }
        }
        for c in context { log.append(c, urgent: false) }
    }

    /// `{"event":"context","id":…,"ids":[…],"span":"before"|"after","requests":[{"time","host","category","search_term"}]}`:
    /// `id` is the first incident it belongs to, `ids` all of them (a person's incidents
    /// within the hour share one).
    static func contextEvent(ids: [String], span: String, seen: [Seen], time: Double) -> String {
        var j = JSONText()
        j.beginObject()
        j.field("event", .string("context"))
        j.field("id", .string(ids[0]))
        if ids.count > 1 {
            j.key("ids")
            j.beginArray()
            for id in ids { j.value(.string(id)) }
            j.endArray()
        }
        j.field("time", .string(LogTime.rfc3339(time)))
        j.field("span", .string(span))
        j.key("requests")
        j.beginArray()
        for r in seen {
            j.beginObject()
            j.field("time", .string(LogTime.rfc3339(r.time)))
            j.field("host", .string(r.host))
            j.field("category", .string(r.category))
            if let t = r.searchTerm { j.field("search_term", .string(t)) }
            j.endObject()
        }
        j.endArray()
        j.endObject()
        return j.text
    }

    /// Records the final counts of every open window (at shutdown).
    public func closeAll() {
        let (all, watching) = state.withLock { s -> ([Open], [Watch]) in
            defer { s.open.removeAll(); s.watching.removeAll() }
            return (Array(s.open.values), Array(s.watching.values))
        }
        for o in all where o.hits > 1 { log.append(Self.hitsEvent(o), urgent: false) }
        // The hour after is cut short by the shutdown; what was seen so far is kept.
        for w in watching where !w.seen.isEmpty {
            log.append(Self.contextEvent(ids: w.ids, span: "after", seen: w.seen, time: w.seen.last!.time), urgent: false)
        }
    }

    /// Sortable and unique across restarts: milliseconds since 1970 (12 hex digits), a
    /// per-process counter and the process id.
    static func id(time: Double, counter: UInt32) -> String {
        let ms = UInt64(max(0, time) * 1000)
        return String(unsafeUninitializedCapacity: 30) { out in
            let digits: StaticString = "0123456789abcdef"
            func hex(_ v: UInt64, _ width: Int, _ at: Int) {
                digits.withUTF8Buffer { d in
                    var v = v
                    for i in stride(from: at + width - 1, through: at, by: -1) { out[i] = d[Int(v & 15)]; v >>= 4 }
                }
            }
            for (i, c) in "inc-".utf8.enumerated() { out[i] = c }
            hex(ms, 12, 4); out[16] = UInt8(ascii: "-"); hex(UInt64(counter & 0xFFFFFF), 6, 17); out[23] = UInt8(ascii: "-")
            hex(processID, 6, 24)
            return 30
        }
    }

    static let processID = UInt64(getpid()) & 0xFFFFFF

    static func hitsEvent(_ o: Open) -> String {
        var j = JSONText()
        j.beginObject()
        j.field("event", .string("hits"))
        j.field("id", .string(o.id))
        j.field("time", .string(LogTime.rfc3339(o.last)))
        j.field("hits", .int(o.hits))
        j.field("first_seen", .string(LogTime.rfc3339(o.first)))
        j.field("last_seen", .string(LogTime.rfc3339(o.last)))
        j.key("sample_urls")
        j.beginArray()
        for u in o.samples { j.value(.string(u)) }
        j.endArray()
        j.endObject()
        return j.text
    }

    static func record(id: String, m: MatchedRequest, primary: MatchDetail, severity: Severity, group: Policy.Group,
                       policy: Policy, repeated: Bool, window: Policy.TimeWindow? = nil, device: String? = nil, mac: String? = nil) -> String {
        var j = JSONText()
        j.beginObject()
        j.field("event", .string("incident"))
        j.field("id", .string(id))
        j.field("time", .string(LogTime.rfc3339(m.time)))
        j.field("severity", .string(severity.description))
        j.field("category", .string(primary.name))
        j.field("group", .string(group.name))
        j.field("client", .string(m.client))
        j.field("user", m.user)
        j.field("device", device)
        if let mac { j.field("mac", .string(mac)) }
        j.field("host", .string(m.host))
        j.field("url", m.url)
        j.field("search_term", m.url.flatMap(SearchTerm.extract))
        j.field("action", .string(m.action.description))
        j.key("source")
        j.beginObject()
        j.field("format", .string(m.format.description))
        j.field("peer", .string(m.source))
        j.endObject()
        j.key("rule")
        j.beginObject()
        j.field("kind", .string(primary.kind))
        j.field("file", .string(primary.file))
        j.field("line", .int(primary.line))
        j.field("rule", .string(primary.rule))
        j.field("generation", .int(m.generation))
        j.field("locked", .bool(primary.locked))
        j.endObject()
        j.field("repeated", .bool(repeated))
        j.field("window", window?.name)
        j.key("route")
        j.beginArray()
        for r in policy.routes(severity, group: group, window: window) { j.value(.string(r)) }
        j.endArray()
        j.field("hits", .int(1))
        j.field("first_seen", .string(LogTime.rfc3339(m.time)))
        j.field("last_seen", .string(LogTime.rfc3339(m.time)))
        if let d = policy.deadlines[severity] { j.field("due", .string(LogTime.rfc3339(m.time + d))) } else { j.field("due", nil) }
        j.endObject()
        return j.text
    }
}

/// The search term in a search engine's URL (Google, Bing, DuckDuckGo, YouTube, Yahoo...).
public enum SearchTerm {
    static let keys = ["q", "query", "search_query", "p", "text", "wd"]

    public static func extract(_ url: String) -> String? {
        guard url.utf8.contains(UInt8(ascii: "?")), let qm = url.firstIndex(of: "?") else { return nil }
        let host = url.lowercased()
        guard host.contains("google.") || host.contains("bing.") || host.contains("duckduckgo.") || host.contains("youtube.")
            || host.contains("yahoo.") || host.contains("ecosia.") || host.contains("yandex.") || host.contains("baidu.")
            || host.contains("/search") else { return nil }
        for pair in url[url.index(after: qm)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, keys.contains(String(kv[0])) else { continue }
            return decode(String(kv[1]))
        }
        return nil
    }

    static func decode(_ s: String) -> String {
        var bytes: [UInt8] = []
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "+") { bytes.append(0x20) }
            else if c == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v); it = it.dropFirst(2)
            } else { bytes.append(c) }
        }
        return Terminal.escape(String(decoding: bytes, as: UTF8.self))
    }
}

#if canImport(Glibc)
import Glibc
#endif
