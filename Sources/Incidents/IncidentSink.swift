import Classifier
import Glibc
import LogFormats
import Pipeline
import Synchronization
import SystemSupport

/// Turns matched requests into e-safety incidents: the daemon's `MatchSink`.
///
/// The first hit of (person, registrable domain, category) in a window opens an incident
/// at once; later hits add to its count, first and last seen, and a few sample URLs; when
/// the window closes, a `hits` event records the final count. A page that loads 80
/// resources is one incident, not 80.
public final class IncidentSink: MatchSink, @unchecked Sendable {
    struct Open {
        var id: String
        var opened: Double
        var first: Double
        var last: Double
        var hits: Int
        var samples: [String]
        /// What the proxy or resolver did, as the record or a later `verdict` event says.
        var action: ProxyAction = .unknown
        /// The count the last `hits` event wrote (1: none yet), and when.
        var reported = 1
        var reportedAt = 0.0

        /// Hits not yet in a `hits` event.
        var unreported: Bool { hits > reported }
    }

    /// While hits come, a `hits` event at the second hit and then at most this often, so the
    /// count a DSL sees (`show`, `list`, the report) is never minutes behind; the window's
    /// final count when it closes.
    static let hitsInterval = 60.0
    /// One open incident's key within a person: (registrable domain, category).
    struct OpenKey: Hashable {
        var site: String
        var category: String
    }

    let log: IncidentLog
    /// Instant alerts for new incidents, if configured.
    public let alerts: AlertDispatcher?
    /// The policy in force, frozen in a box: taking it per request is one retain, not a
    /// copy of every group, window and route table.
    final class Frozen: Sendable {
        let policy: Policy
        /// Each group's rules, in the policy's order, then the default group's: a handful of
        /// objects every person shares, so warm in cache (an object per person, each request
        /// read a cold one and its array: two cache misses, about 7% of the incident thread's CPU).
        let rules: [GroupRules]
        init(_ policy: Policy) {
            self.policy = policy
            rules = (policy.groups + [policy.defaultGroup]).map { GroupRules(policy: policy, group: $0) }
        }
    }
    private let currentPolicy: Mutex<Frozen>
    let suffixes: PublicSuffix
    /// How far ahead of the wall clock a line's time may be and still drive the windows.
    let futureTolerance: Double
    /// Lines whose time was that far ahead (kept in their records, not trusted for windows).
    public let futureTimes = Atomic<Int>(0)

    /// Applies a new policy (after a reload); open windows continue.
    public func update(policy: Policy) { currentPolicy.withLock { $0 = Frozen(policy) } }
    /// A categorised request kept for context: only matched requests (every category,
    /// including those only counted), never unmatched browsing. The search term is taken
    /// from the URL only if the request is written into a `context` event.
    struct Seen {
        var time: Double
        var host: String
        var category: String
        var url: String?
    }
    /// A person with a recent incident: the incidents whose hour after is watched, and that
    /// hour's requests once they are taken out of the person's `seen` (see `Person.collecting`).
    final class Watch {
        var ids: [String]
        let until: Double
        /// The hour's requests, when no longer read from the person's `seen`.
        var taken: [Seen]? = nil
        init(ids: [String], until: Double) { (self.ids, self.until) = (ids, until) }
    }
    /// The most requests an `after` event holds.
    static let watchLimit = contextLimit * 4

    /// One group of a policy, with what is worked out once for it instead of per request.
    final class GroupRules: Sendable {
        let group: Policy.Group
        /// `policy.mayRaise` for an unlocked category of each severity (a locked one always may).
        let raisable: [Bool]
        init(policy: Policy, group: Policy.Group) {
            self.group = group
            raisable = Severity.allCases.map { policy.mayRaise(category: $0, locked: false, group: group) }
        }

        func mayRaise(_ severity: Severity, locked: Bool) -> Bool { locked || raisable[Int(severity.rawValue)] }
    }

    /// Everything kept about one person (a user, or a client address when the log names
    /// no user), found with one lookup per request and changed in place.
    final class Person {
        /// Open incidents, by (registrable domain, category).
        var open: [OpenKey: Open] = [:]
        /// Times of recent hits per category, for repetition.
        var recent: [(category: String, times: [Double])] = []
        /// Categorised requests within the context window: the last `contextLimit` for the
        /// hour before an incident and, while a watched hour is `collecting`, every one since
        /// it began. One buffer appended to once per request: a request is not copied into a
        /// second one for the watch (two more cache misses per request, most of the sink's
        /// time in `keep`).
        var seen = SeenLog()
        /// Requests removed from the front of `seen` so far: the `n`th request kept is
        /// `seen`'s `n - dropped`th.
        var dropped = 0
        /// After an incident: the hour's requests, written as one `after` event.
        var watch: Watch?
        /// A watched hour whose requests are still read from `seen`, from the `watchStart`th
        /// request kept (`seen` is only cut before it), until `watchLimit` of them are within
        /// the hour (`watchCounted`); they are then taken out into the watch.
        var collecting = false
        var watchStart = 0
        var watchCounted = 0
        /// The watched hour's end, here as well as in the watch (no second object read per request).
        var watchUntil = -Double.infinity
        /// The index of this person's group in `groupPolicy.rules`, worked out for the client
        /// `groupClient` under that policy (held, not its address: a freed policy's memory can
        /// be the next one's). Kept here, in the person's own object, read with it.
        var groupIndex = 0
        var groupPolicy: Frozen?
        var groupClient = ""
        /// The time of this person's latest request (for choosing whom to forget first).
        var lastActive = 0.0
        /// The key this person is kept under, and the second of log time at which the sweep
        /// looks at them next (nil: not scheduled; a person is in one bucket at most).
        let name: String
        var due: Int?
        /// Forgotten (evicted or swept away): a bucket still naming them skips them.
        var gone = false

        init(name: String) { self.name = name }

        /// When something kept about this person next runs out: an open window, a repetition
        /// time, the watched hour, the oldest request kept as context.
        func nextExpiry(_ policy: Policy) -> Double? {
            var next = Double.infinity
            for o in open.values { next = min(next, o.opened + policy.deduplicationWindow) }
            for r in recent { if let t = r.times.first { next = min(next, t + policy.repetitionWindow) } }
            if let w = watch { next = min(next, w.until) }
            // (While collecting, requests from the watch's start run out with it.)
            if let oldest = seen.firstTime, !collecting || watchStart > dropped {
                next = min(next, oldest + max(0, policy.contextWindow))
            }
            return next.isFinite ? next : nil
        }

        var isEmpty: Bool { open.isEmpty && recent.isEmpty && seen.isEmpty && watch == nil }

        /// The watched hour's requests so far (for its `after` event).
        func watched() -> [Seen] {
            guard let w = watch else { return [] }
            if let taken = w.taken { return taken }
            let from = max(0, min(seen.count, watchStart - dropped))
            return seen.requests(from: from, limit: IncidentSink.watchLimit) { $0 < w.until }
        }

        /// Takes the watched hour's requests out of `seen`, which may then be cut anywhere.
        func takeWatched() {
            guard collecting, let w = watch else { return }
            w.taken = watched()
            collecting = false
            // Full: nothing more is added (no need to look at the watch per request).
            if w.taken!.count >= IncidentSink.watchLimit { watchUntil = -.infinity }
        }

        /// Starts watching the hour after an incident, from the next request kept.
        func startWatch(_ w: Watch) {
            watch = w
            collecting = true
            watchStart = dropped + seen.count
            watchCounted = 0
            watchUntil = w.until
        }

        func endWatch() {
            watch = nil
            collecting = false
            watchUntil = -.infinity
        }

        /// Removes the requests whose time is `expired` from `seen` (all of them, or while
        /// collecting only those before the watch's start, from the front).
        func forget(where expired: (Double) -> Bool) {
            if collecting {
                dropped += seen.removeFirst(upTo: watchStart - dropped, while: expired)
            } else {
                dropped += seen.removeAll(where: expired)
            }
        }
    }

    /// People kept in memory at most; past it, the least recently active are forgotten.
    public let maxPeople: Int
    /// People forgotten to stay under `maxPeople`: their windows ended early, with their counts
    /// and context written first (no incident is lost; a later hit may open a new one).
    public let evictions = Atomic<Int>(0)
    /// Matched requests handled so far (each one, whether it opened, joined or only counted).
    public let handled = Atomic<Int>(0)
    /// People kept now.
    public var peopleKept: Int { state.withLock { $0.people.count } }

    struct State {
        var people: [String: Person] = [:]
        /// People to look at, by the second of log time when something of theirs runs out:
        /// a sweep visits only the buckets it has reached, never every person kept.
        var expiring: [Int: [Person]] = [:]
        var counter: UInt32 = 0
        var lastSweep = 0.0
        /// The wall clock when last read (for lines dated ahead of it).
        var wallClock = 0.0
        /// The latest (trusted) time seen: sweeps follow it, so sources whose clocks differ
        /// (Squid in UTC seconds, a resolver in local time a second behind) do not each set
        /// the sweep's time back and forth, which swept every person at every alternation.
        var latest = 0.0
        /// Host -> registrable domain, for the hosts seen lately (a page's hosts repeat).
        var sites: [String: String] = [:]
    }
    private let state = Mutex(State())
    static let contextLimit = 50

    /// Client address (or MAC) -> device name, and (for logs without users) client address -> user.
    let devices: [String: String]
    /// Client address -> MAC, from the DHCP leases in the logs (bounded).
    private let leases = Mutex<[String: (mac: String, name: String?)]>([:])
    let users: [String: String]
    /// Local time's offset from UTC, for time windows.
    let utcOffset: Int

    public init(
        log: IncidentLog,
        policy: Policy,
        suffixes: PublicSuffix,
        devices: [String: String] = [:],
        users: [String: String] = [:],
        utcOffset: Int? = nil,
        alerts: AlertDispatcher? = nil,
        futureTolerance: Double = 86400,
        maxPeople: Int = 200_000
    ) {
        self.futureTolerance = futureTolerance
        self.maxPeople = max(10, maxPeople)
        self.alerts = alerts
        self.devices = devices
        self.users = users
        self.utcOffset = utcOffset ?? LogTime().localOffset
        self.log = log
        self.currentPolicy = Mutex(Frozen(policy))
        self.suffixes = suffixes
    }

    public func lease(client: String, mac: String, name: String?) {
        leases.withLock { l in
            if l.count >= 100_000 { l.removeAll(keepingCapacity: true) }
            l[client] = (mac, name)
        }
    }

    /// How far apart a resolver's query line and its block line may be (seconds of log time).
    static let verdictWindow = 10.0

    /// A resolver's block line for a request that opened (or counted in) an incident: the
    /// incident's open window for that site is marked blocked with a `verdict` event, once.
    public func verdict(client: String, host: String, action: ProxyAction, time: Double) {
        let name = (users.isEmpty ? nil : users[client]) ?? client
        var events: [[UInt8]] = []
        state.withLock { s in
            guard let person = s.people[name], !person.open.isEmpty else { return }
            let site = s.sites[host] ?? suffixes.registrableDomain(host)
            for i in person.open.indices where person.open.keys[i].site == site {
                let o = person.open.values[i]
                // Only the verdict on the incident's one request: when an earlier visit in the
                // window had no block line (it was answered), the incident stays as written.
                guard o.action.blocker == nil, o.hits == 1, abs(time - o.last) <= Self.verdictWindow else {
                    continue
                }
                person.open.values[i].action = action
                let record = VerdictRecord(
                    id: o.id,
                    time: RecordTime(seconds: time),
                    action: action.description,
                    blockedBy: action.blocker
                )
                events.append(LogRecord.verdict(record).bytes)
            }
        }
        for e in events { log.append(bytes: e, durability: .interval) }
    }

    /// Records to append once the state's lock is released.
    struct Output {
        var hits: [Open] = []
        var context: [[UInt8]] = []
        var incident: (record: [UInt8], id: String, severity: Severity, due: Double?)?
    }

    public func accept(_ request: MatchedRequest) {
        // Logs without users (DNS) get one from the mapping file, if it names the address.
        let user = request.user ?? (users.isEmpty ? nil : users[request.client])
        handled.add(1, ordering: .relaxed)
        let count = request.categoryCount
        guard count > 0 else { return }
        // Windows and expiry follow the wall clock when a line claims a time far ahead of it
        // (a wrong clock, a hostile line): one line stamped 9999 must not close every open
        // window. Its own time stays in the record.
        let m = request
        var time = request.time
        let frozen = currentPolicy.withLock { $0 }
        let name = user ?? m.client
        var out = Output()
        var category = ""
        state.withLock { s in
            // The clock is read only when a line is that far ahead of the last reading.
            if time - s.wallClock > futureTolerance {
                s.wallClock = Clock.now()
                if time - s.wallClock > futureTolerance {
                    time = s.wallClock
                    futureTimes.add(1, ordering: .relaxed)
                }
            }
            if time > s.latest { s.latest = time }
            if s.latest - s.lastSweep >= 1 { sweep(&s, now: s.latest, policy: frozen.policy, into: &out) }
            let person: Person
            if let p = s.people[name] {
                person = p
            } else {
                if s.people.count >= maxPeople { evictLeastActive(&s, into: &out) }
                person = Person(name: name)
                s.people[name] = person
            }
            // Whatever this request leaves behind runs out one shortest window from now at the
            // earliest; the sweep then finds the exact next time.
            if person.due == nil { Self.schedule(person, at: time + frozen.policy.shortestWindow, in: &s) }
            person.lastActive = max(person.lastActive, time)
            // (Without groups, every client is in the default group.)
            if person.groupPolicy !== frozen || !(frozen.policy.groups.isEmpty || person.groupClient == m.client) {
                person.groupIndex = frozen.policy.groupIndex(client: m.client, user: user)
                person.groupPolicy = frozen
                person.groupClient = m.client
            }
            let chosen = frozen.rules[person.groupIndex]
            // The most severe category this group raises incidents for; when it raises none
            // of them, the request still counts (and is kept as context) but opens no incident.
            // Rules are described (file, line, text) only for a new incident's record.
            var raised: Int? = nil
            var primary = m.category(0)
            if chosen.group.raises(primary.name, locked: primary.locked) {
                raised = 0
            } else {
                for i in 1..<max(1, count) {
                    let c = m.category(i)
                    if chosen.group.raises(c.name, locked: c.locked) {
                        raised = i
                        primary = c
                        break
                    }
                }
            }
            category = primary.name
            // Context: this person's categorised requests in the hour before an incident
            // (in memory only) and the hour after one (written as `context` events).
            let span = frozen.policy.contextWindow
            if span > 0 { Self.keep(time: time, host: m.host, category: primary.name, url: m.url, for: person) }
            guard raised != nil, chosen.mayRaise(primary.severity, locked: primary.locked) else { return }
            let policy = frozen.policy
            let group = chosen.group
            let site: String
            if let known = s.sites[m.host] {
                site = known
            } else {
                site = suffixes.registrableDomain(m.host)
                if s.sites.count >= 8192 { s.sites.removeAll(keepingCapacity: true) }
                s.sites[m.host] = site
            }
            let key = OpenKey(site: site, category: primary.name)
            if Self.absorb(m, at: time, into: person, key: key, window: policy.deduplicationWindow, closed: &out.hits) {
                return
            }
            let repeated = Self.repeated(primary.name, by: person, at: time, policy: policy)
            let window = policy.window(for: group, time: time, utcOffset: utcOffset)
            let severity = policy.severity(
                category: primary.severity,
                locked: primary.locked,
                group: group,
                repeated: repeated,
                window: window
            )
            guard severity >= group.minimumSeverity || primary.locked else { return }
            s.counter &+= 1
            let id = IncidentID.make(time: time, counter: s.counter)
            person.open[key] = Open(
                id: id,
                opened: time,
                first: time,
                last: time,
                hits: 1,
                samples: m.url.map { [$0] } ?? [],
                action: m.action
            )
            let lease = leases.withLock { $0[m.client] }
            let mac = lease?.mac
            // The devices file names it by address or MAC; else the name the device gave its lease.
            let device = devices[m.client] ?? mac.flatMap { devices[$0] } ?? lease?.name
            out.incident = (
                Self.record(
                    id: id,
                    m: m,
                    time: time,
                    user: user,
                    primary: m.detail(raised ?? 0),
                    severity: severity,
                    group: group,
                    policy: policy,
                    repeated: repeated,
                    window: window,
                    device: device,
                    mac: mac
                ),
                id, severity, policy.deadlines[severity].map { time + $0 }
            )
            if span > 0 { Self.watch(person, after: id, at: time, span: span, context: &out.context) }
        }
        for o in out.hits { log.append(bytes: Self.hitsEvent(o), durability: .interval) }
        if let incident = out.incident {
            log.append(
                bytes: incident.record,
                durability: incident.severity >= .critical ? .now : incident.severity >= .high ? .prompt : .interval
            )
            if let alerts, alerts.wants(incident.severity) {
                alerts.incident(
                    String(decoding: incident.record, as: UTF8.self),
                    id: incident.id,
                    severity: incident.severity,
                    person: name,
                    category: category,
                    due: incident.due
                )
            }
        }
        for c in out.context { log.append(bytes: c, durability: .interval) }
    }

    /// Keeps a categorised request as context: in the hour before any incident (in memory
    /// only, the last `contextLimit`), and in the watched hour after one.
    private static func keep(time: Double, host: String, category: String, url: String?, for person: Person) {
        person.seen.append(time: time, category: category, host: host, url: url)
        if person.collecting {
            if time < person.watchUntil { person.watchCounted += 1 }
            // Full (or, with clocks far apart, as many again outside the hour): taken out once.
            let since = person.dropped + person.seen.count - person.watchStart
            if person.watchCounted >= watchLimit || since >= 2 * watchLimit { person.takeWatched() }
        } else if time < person.watchUntil, let w = person.watch {
            // Taken out before it was full: the rest of the hour goes there, up to the limit.
            w.taken?.append(Seen(time: time, host: host, category: category, url: url))
            if w.taken?.count ?? watchLimit >= watchLimit { person.watchUntil = -.infinity }
        }
        // Up to twice the limit, then the older half goes at once: no shift of the whole
        // buffer per request (readers take the last `contextLimit`); never the watch's requests
        // while they are read from here.
        if person.seen.count >= contextLimit * 2 {
            var cut = person.seen.count - contextLimit
            if person.collecting { cut = min(cut, person.watchStart - person.dropped) }
            if cut > 0 {
                person.seen.removeFirst(cut)
                person.dropped += cut
            }
        }
    }

    /// A hit inside an open incident's window is counted there (true), and its count written
    /// at once at the second hit and then at most every `hitsInterval` (into `closed`, the
    /// `hits` events to write). A window that closed before the sweep came round is ended now,
    /// with its count when there are hits not yet written (false).
    private static func absorb(
        _ m: MatchedRequest,
        at time: Double,
        into person: Person,
        key: OpenKey,
        window: Double,
        closed: inout [Open]
    ) -> Bool {
        guard let i = person.open.index(forKey: key) else { return false }
        let o = person.open.values[i]
        if time - o.opened < window {
            // In place: one lookup, no copy of the samples.
            person.open.values[i].hits += 1
            person.open.values[i].last = max(o.last, time)
            person.open.values[i].first = min(o.first, time)
            if o.samples.count < 5, let url = m.url, !o.samples.contains(url) {
                person.open.values[i].samples.append(url)
            }
            if o.hits == 1 || time - o.reportedAt >= hitsInterval {
                person.open.values[i].reported = o.hits + 1
                person.open.values[i].reportedAt = time
                closed.append(person.open.values[i])
            }
            return true
        }
        if o.unreported { closed.append(o) }
        person.open.remove(at: i)
        return false
    }

    /// Whether this person has reached the repetition threshold for a category (hits within
    /// the repetition window, this one included).
    private static func repeated(_ category: String, by person: Person, at time: Double, policy: Policy) -> Bool {
        if let r = person.recent.firstIndex(where: { $0.category == category }) {
            // Only the latest `repetitionHits` times can decide it: no more are kept, so a
            // person with thousands of hits in the hour costs no more than one with three.
            person.recent[r].times.removeAll { time - $0 >= policy.repetitionWindow }
            person.recent[r].times.append(time)
            let excess = person.recent[r].times.count - max(1, policy.repetitionHits)
            if excess > 0 { person.recent[r].times.removeFirst(excess) }
            return person.recent[r].times.count >= policy.repetitionHits
        }
        person.recent.append((category, [time]))
        return 1 >= policy.repetitionHits
    }

    /// After a new incident: the hour before is written as a `before` event, and the hour
    /// after is watched; an incident inside an hour already watched shares its `after` event.
    private static func watch(
        _ person: Person,
        after id: String,
        at time: Double,
        span: Double,
        context: inout [[UInt8]]
    ) {
        if let w = person.watch, time < w.until {
            if w.ids.count < 100 { w.ids.append(id) }
            return
        }
        if let w = person.watch {
            let after = person.watched()
            if !after.isEmpty { context.append(contextEvent(ids: w.ids, span: .after, seen: after, time: w.until)) }
        }
        // The last `contextLimit` before this incident's own request (the last one kept).
        let n = person.seen.count
        let before = person.seen.requests(from: max(0, n - contextLimit - 1), to: n - 1) { time - $0 < span }
        if !before.isEmpty { context.append(contextEvent(ids: [id], span: .before, seen: before, time: time)) }
        person.startWatch(Watch(ids: [id], until: time + span))
    }

    /// Puts a person in the bucket of the second when something of theirs runs out.
    private static func schedule(_ person: Person, at time: Double, in s: inout State) {
        let second = Int(max(-9e15, min(9e15, time.rounded(.up))))
        person.due = second
        s.expiring[second, default: []].append(person)
    }

    /// Closes expired windows and forgets what no window needs any more, at most once a
    /// second of log time, visiting only the people whose bucket the time has reached.
    private func sweep(_ s: inout State, now: Double, policy: Policy, into out: inout Output) {
        let from = Int(max(-9e15, min(9e15, s.lastSweep.rounded(.down))))
        s.lastSweep = now
        let to = Int(max(-9e15, min(9e15, now.rounded(.down))))
        guard !s.expiring.isEmpty, to >= from else { return }
        // Seconds in order when the gap is short; after a long gap (a backlog caught up,
        // the first line after a quiet night), the buckets that exist.
        let seconds = to - from <= 4096 ? Array(from...to) : s.expiring.keys.filter { $0 <= to }.sorted()
        for second in seconds {
            guard let people = s.expiring.removeValue(forKey: second) else { continue }
            for p in people where !p.gone && p.due == second {
                p.due = nil
                expire(p, now: now, policy: policy, into: &out)
                if p.isEmpty {
                    p.gone = true
                    s.people[p.name] = nil
                } else if let next = p.nextExpiry(policy) {
                    Self.schedule(p, at: max(next, now + 1), in: &s)
                }
            }
        }
    }

    /// Ends what has run out for one person at `now`.
    private func expire(_ p: Person, now: Double, policy: Policy, into out: inout Output) {
        let span = policy.contextWindow
        if !p.open.isEmpty {
            for (k, o) in p.open where now - o.opened >= policy.deduplicationWindow {
                if o.unreported { out.hits.append(o) }
                p.open[k] = nil
            }
        }
        if !p.recent.isEmpty {
            for i in p.recent.indices { p.recent[i].times.removeAll { now - $0 >= policy.repetitionWindow } }
            p.recent.removeAll { $0.times.isEmpty }
        }
        if let w = p.watch, now >= w.until {
            let after = p.watched()
            if !after.isEmpty {
                out.context.append(Self.contextEvent(ids: w.ids, span: .after, seen: after, time: w.until))
            }
            p.endWatch()
        }
        if let oldest = p.seen.firstTime, now - oldest >= span || span <= 0 {
            p.forget { now - $0 >= span }
        }
    }

    /// The `context` line: `id` is the first incident it belongs to, `ids` all of them (a
    /// person's incidents within the hour share one).
    static func contextEvent(ids: [String], span: ContextRecord.Span, seen: [Seen], time: Double) -> [UInt8] {
        let requests = seen.map {
            ContextRecord.Request(
                time: RecordTime(seconds: $0.time),
                host: $0.host,
                category: $0.category,
                searchTerm: $0.url.flatMap(SearchTerm.extract)
            )
        }
        return LogRecord.context(
            ContextRecord(ids: ids, time: RecordTime(seconds: time), span: span, requests: requests)
        )
        .bytes
    }

    /// Records the final counts of every open window (at shutdown).
    /// Forgets the least recently active tenth of the people kept (sorting once per tenth,
    /// so the cost per new person stays small), writing what each has pending first: the
    /// counts of open windows and the context of a watched hour, as at shutdown.
    private func evictLeastActive(_ s: inout State, into out: inout Output) {
        let count = max(1, s.people.count / 10)
        let oldest = s.people.sorted { $0.value.lastActive < $1.value.lastActive }.prefix(count)
        for (name, p) in oldest {
            for o in p.open.values where o.unreported { out.hits.append(o) }
            if let w = p.watch {
                let after = p.watched()
                if let last = after.last {
                    out.context.append(Self.contextEvent(ids: w.ids, span: .after, seen: after, time: last.time))
                }
            }
            p.gone = true
            s.people[name] = nil
        }
        evictions.add(oldest.count, ordering: .relaxed)
    }

    public func closeAll() {
        let people = state.withLock { s -> [Person] in
            defer {
                s.people.removeAll()
                s.expiring.removeAll()
            }
            return Array(s.people.values)
        }
        for p in people {
            for o in p.open.values where o.unreported {
                log.append(bytes: Self.hitsEvent(o), durability: .interval)
            }
            // The hour after is cut short by the shutdown; what was seen so far is kept.
            let after = p.watched()
            if let w = p.watch, let last = after.last {
                log.append(
                    bytes: Self.contextEvent(ids: w.ids, span: .after, seen: after, time: last.time),
                    durability: .interval
                )
            }
        }
    }

    static func hitsEvent(_ o: Open) -> [UInt8] {
        LogRecord.hits(
            HitsRecord(
                id: o.id,
                hits: o.hits,
                firstSeen: RecordTime(seconds: o.first),
                lastSeen: RecordTime(seconds: o.last),
                sampleURLs: o.samples
            )
        ).bytes
    }

    static func record(
        id: String,
        m: MatchedRequest,
        time trusted: Double? = nil,
        user: String?,
        primary: MatchDetail,
        severity: Severity,
        group: Policy.Group,
        policy: Policy,
        repeated: Bool,
        window: Policy.TimeWindow? = nil,
        device: String? = nil,
        mac: String? = nil
    ) -> [UInt8] {
        // The line's own time is the record's; windows and the due time run on the trusted one.
        let time = RecordTime(seconds: m.time)
        let rule = IncidentRecord.Rule(
            kind: primary.kind,
            file: primary.file,
            line: primary.line,
            rule: primary.rule,
            generation: m.generation,
            locked: primary.locked
        )
        var record = IncidentRecord(
            id: id,
            time: time,
            severity: severity,
            category: primary.name,
            group: group.name,
            client: m.client,
            user: user,
            device: device,
            mac: mac,
            host: m.host,
            url: m.url,
            searchTerm: m.url.flatMap(SearchTerm.extract),
            action: m.action.description,
            source: IncidentRecord.Source(format: m.format.description, peer: m.source),
            rule: rule,
            repeated: repeated,
            window: window?.name,
            route: policy.routes(severity, group: group, window: window),
            firstSeen: time,
            lastSeen: time,
            due: policy.deadlines[severity].map { RecordTime(seconds: (trusted ?? m.time) + $0) }
        )
        record.blockedBy = m.action.blocker
        record.categoryName = primary.displayName
        var j = JSONText(capacity: 1024)
        record.write(to: &j)
        return j.bytes
    }
}
