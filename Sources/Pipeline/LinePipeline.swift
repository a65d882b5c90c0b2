import Classifier
import Glibc
import LogFormats
import Synchronization
import SystemSupport

/// One numbered, immutable generation of compiled lists.
public final class Generation: Sendable {
    public let number: Int
    public let lists: CompiledLists
    /// Seconds since 1970 when it was built.
    public let loadedAt: Double
    /// Seconds it took to build.
    public let loadSeconds: Double

    public init(number: Int, lists: CompiledLists, loadedAt: Double, loadSeconds: Double) {
        self.number = number
        self.lists = lists
        self.loadedAt = loadedAt
        self.loadSeconds = loadSeconds
    }
}

/// Holds the current generation; a reload swaps it in one step. Readers take it once per
/// batch of lines, so a batch is never classified by two generations, and never by a
/// half-built one.
public final class GenerationHolder: Sendable {
    private let state: Mutex<Generation>

    public init(_ initial: Generation) { state = Mutex(initial) }

    public var current: Generation { state.withLock { $0 } }

    public func swap(_ new: Generation) { state.withLock { $0 = new } }
}

/// A request that matched at least one category, with everything an incident needs,
/// copied out of the line.
public struct MatchedRequest: Sendable {
    public var time: Double
    public var client: String
    public var user: String?
    public var host: String
    public var url: String?
    public var method: String?
    public var action: ProxyAction
    public var format: LogFormat
    /// Where the line came from (socket and peer, or file).
    public var source: String
    /// Effective matches, most severe first: described (names, files, rule text) when first
    /// asked for, on the thread that asks, so the ingest thread hands over plain hits.
    public var categories: [MatchDetail] {
        switch matches {
        case .described(let d): d
        case .one(let hit, let lists): [lists.describe(hit)]
        case .hits(let hits, let lists): hits.map(lists.describe)
        }
    }
    /// The most severe category's name, without describing the rest.
    var primaryCategory: String? { categoryCount > 0 ? category(0).name : nil }

    /// How many categories matched.
    public var categoryCount: Int {
        switch matches {
        case .described(let d): d.count
        case .one: 1
        case .hits(let hits, _): hits.count
        }
    }

    /// The `i`th category's name, severity and lock, without describing its rule.
    public func category(_ i: Int) -> (name: String, severity: Severity, locked: Bool) {
        switch matches {
        case .described(let d): (d[i].name, d[i].severity, d[i].locked)
        case .one(let hit, let lists):
            (lists.categories[Int(hit.category)].name, hit.severity, lists.categories[Int(hit.category)].locked)
        case .hits(let hits, let lists):
            (
                lists.categories[Int(hits[i].category)].name, hits[i].severity,
                lists.categories[Int(hits[i].category)].locked
            )
        }
    }

    /// The `i`th category with its rule described (file, line, rule text).
    public func detail(_ i: Int) -> MatchDetail {
        switch matches {
        case .described(let d): d[i]
        case .one(let hit, let lists): lists.describe(hit)
        case .hits(let hits, let lists): lists.describe(hits[i])
        }
    }
    public var generation: Int

    enum Matches: Sendable {
        case described([MatchDetail])
        /// Most matches have one category: no array to allocate and free per match.
        case one(Hit, CompiledLists)
        case hits([Hit], CompiledLists)
    }
    var matches: Matches
}

// In an extension, so the member-wise initialiser stays for the two below.
extension MatchedRequest {
    public init(
        time: Double,
        client: String,
        user: String?,
        host: String,
        url: String?,
        method: String?,
        action: ProxyAction,
        format: LogFormat,
        source: String,
        categories: [MatchDetail],
        generation: Int
    ) {
        self.init(
            time: time,
            client: client,
            user: user,
            host: host,
            url: url,
            method: method,
            action: action,
            format: format,
            source: source,
            generation: generation,
            matches: .described(categories)
        )
    }

    /// A request whose hits (most severe first, at least one) are described when first asked
    /// for; a slice, as the incident thread's queue holds them: a request with one category
    /// holds its hit without an array of its own.
    public init(
        time: Double,
        client: String,
        user: String?,
        host: String,
        url: String?,
        method: String?,
        action: ProxyAction,
        format: LogFormat,
        source: String,
        hits: ArraySlice<Hit>,
        lists: CompiledLists,
        generation: Int
    ) {
        self.init(
            time: time,
            client: client,
            user: user,
            host: host,
            url: url,
            method: method,
            action: action,
            format: format,
            source: source,
            generation: generation,
            matches: hits.count == 1 ? .one(hits[hits.startIndex], lists) : .hits(Array(hits), lists)
        )
    }
}

/// A match as the pipeline sees it: the request's fields are views into the line being
/// read, valid only during `MatchSink.accept(raw:)`. A sink that hands matches to another
/// thread copies the bytes it needs, so the ingest thread allocates nothing per match.
public struct RawMatch {
    public var time: Double
    public var client: UnsafeRawBufferPointer
    public var user: UnsafeRawBufferPointer?
    /// The normalised host.
    public var host: UnsafeRawBufferPointer
    public var url: UnsafeRawBufferPointer?
    public var method: UnsafeRawBufferPointer?
    public var action: ProxyAction
    public var format: LogFormat
    public var source: String
    /// Most severe first.
    public var hits: UnsafeBufferPointer<Hit>
    public var lists: CompiledLists
    public var generation: Int

    public init(
        time: Double,
        client: UnsafeRawBufferPointer,
        user: UnsafeRawBufferPointer?,
        host: UnsafeRawBufferPointer,
        url: UnsafeRawBufferPointer?,
        method: UnsafeRawBufferPointer?,
        action: ProxyAction,
        format: LogFormat,
        source: String,
        hits: UnsafeBufferPointer<Hit>,
        lists: CompiledLists,
        generation: Int
    ) {
        self.time = time
        self.client = client
        self.user = user
        self.host = host
        self.url = url
        self.method = method
        self.action = action
        self.format = format
        self.source = source
        self.hits = hits
        self.lists = lists
        self.generation = generation
    }

    /// The match with its own copies of everything.
    public var request: MatchedRequest {
        func s(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }
        return MatchedRequest(
            time: time,
            client: s(client),
            user: user.map(s),
            host: s(host),
            url: url.map(s),
            method: method.map(s),
            action: action,
            format: format,
            source: source,
            hits: ArraySlice(hits),
            lists: lists,
            generation: generation
        )
    }
}

/// Where matched requests go. The daemon's sink becomes the incident log; replay prints.
/// `accept` may block to apply backpressure; it must never drop silently.
public protocol MatchSink: AnyObject, Sendable {
    func accept(_ match: MatchedRequest)
    /// The pipeline's call: by default, `accept(raw.request)`. The views in `raw` must not
    /// outlive the call.
    func accept(raw: borrowing RawMatch)
    /// A DHCP lease seen in the logs: `client` now belongs to the device with `mac`, which
    /// called itself `name` when the lease line says.
    func lease(client: String, mac: String, name: String?)
    /// A resolver's block line for a request already handed over (`accept`) from `client` for
    /// `host` (normalised): the request was `action` (blocked, by whom).
    func verdict(client: String, host: String, action: ProxyAction, time: Double)
}

extension MatchSink {
    public func accept(raw: borrowing RawMatch) { accept(raw.request) }
    public func lease(client: String, mac: String, name: String?) {}
    public func verdict(client: String, host: String, action: ProxyAction, time: Double) {}
    /// A lease without a host name.
    public func lease(client: String, mac: String) { lease(client: client, mac: mac, name: nil) }
}

/// Per-format counters of one pipeline.
public struct FormatCounters: Sendable, Equatable {
    public var parsed = 0, matched = 0, ignored = 0, malformed = 0
    public init() {}
    public static func += (a: inout FormatCounters, b: FormatCounters) {
        a.parsed += b.parsed
        a.matched += b.matched
        a.ignored += b.ignored
        a.malformed += b.malformed
    }
}

/// Counters of one source: lines in, and per format what became of them.
public struct SourceCounters: Sendable, Equatable {
    public var received = 0
    public var tooLong = 0
    /// Index `LogFormat.rawValue`; the last slot counts malformed lines of no known format.
    public var formats = [FormatCounters](repeating: FormatCounters(), count: LogFormat.allCases.count + 1)
    public var matchLimitHits = 0
    /// Matched requests by their most severe category.
    public var categories: [String: Int] = [:]
    /// The first malformed lines, escaped and cut to 200 bytes, with the reason.
    public var samples: [String] = []
    static let maxSamples = 5

    public init() {}

    public var parsed: Int { formats.reduce(0) { $0 + $1.parsed } }
    public var matched: Int { formats.reduce(0) { $0 + $1.matched } }
    public var ignored: Int { formats.reduce(0) { $0 + $1.ignored } }
    public var malformed: Int { formats.reduce(0) { $0 + $1.malformed } }

    public mutating func add(_ other: SourceCounters) {
        received += other.received
        tooLong += other.tooLong
        matchLimitHits += other.matchLimitHits
        for (name, n) in other.categories { categories[name, default: 0] += n }
        for i in formats.indices { formats[i] += other.formats[i] }
        for s in other.samples where samples.count < Self.maxSamples { samples.append(s) }
    }
}

/// Parse, classify, hand matches to the sink: the same steps for the daemon's sockets and
/// for `esafety replay`. One per thread or connection; not shareable.
public final class LinePipeline {
    public let source: String
    public let pinned: LogFormat?
    let parser: LineParser
    let holder: GenerationHolder
    let sink: MatchSink
    var generation: Generation {
        didSet { lists = Unmanaged.passUnretained(generation.lists) }
    }
    /// The generation's lists, kept alive by `generation`, used without a reference count:
    /// every ingest thread shares them, and a retain and release per line on one shared
    /// object is a cache line passed between the cores on every line.
    private var lists: Unmanaged<CompiledLists>
    var scratch: ClassifyScratch
    /// Counters since the last `takeCounters()`.
    public private(set) var counters = SourceCounters()
    /// unbound log-replies count as requests only while no log-queries line was seen.
    var sawUnboundQuery = false
    /// Resolvers' query and block lines, paired into one request.
    var pairing = ResolverPairing()
    /// Lines already in `counters.samples` since the pipeline began (samples are few).
    var samplesTaken = 0
    /// Matches by most severe category, indexed as the generation's categories (names are
    /// looked up when the counters are taken, not per match).
    var categoryCounts: [Int]

    public init(
        source: String,
        format: LogFormat?,
        holder: GenerationHolder,
        sink: MatchSink,
        time: LogTime = LogTime()
    ) {
        self.source = source
        self.pinned = format
        self.parser = LineParser(time: time)
        self.holder = holder
        self.sink = sink
        self.generation = holder.current
        self.lists = Unmanaged.passUnretained(generation.lists)
        self.scratch = generation.lists.makeScratch()
        self.categoryCounts = Array(repeating: 0, count: generation.lists.categories.count)
    }

    /// Takes the current generation; call once per batch of lines.
    @inline(__always)
    public func refreshGeneration() {
        let g = holder.current
        if g !== generation {
            countCategories()
            generation = g
            scratch = g.lists.makeScratch()
            categoryCounts = Array(repeating: 0, count: g.lists.categories.count)
        }
    }

    /// A line that was longer than the limit and skipped.
    public func countTooLong() {
        counters.received += 1
        counters.tooLong += 1
    }

    /// Processes one line (without `\n`). `arrival` is the time to use when the line has none.
    @inline(__always)
    public func process(_ line: UnsafeRawBufferPointer, arrival: Double) {
        counters.received += 1
        switch parser.parse(line, format: pinned) {
        case .request(let r):
            if r.format == .unbound { sawUnboundQuery = true }
            query(r, arrival: arrival)
        case .reply(let r):
            if sawUnboundQuery {
                counters.formats[Int(r.format.rawValue)].ignored += 1
            } else {
                query(r, arrival: arrival)
            }
        case .block(let r):
            block(r, arrival: arrival)
        case .ignored(let f):
            counters.formats[Int(f.rawValue)].ignored += 1
        case .blank:
            counters.formats[Int(pinned?.rawValue ?? UInt8(LogFormat.allCases.count))].ignored += 1
        case .lease(let f, let client, let mac, let name):
            counters.formats[Int(f.rawValue)].ignored += 1
            sink.lease(
                client: String(decoding: client, as: UTF8.self),
                mac: String(decoding: mac, as: UTF8.self).lowercased(),
                name: name.map { Terminal.escape(String(decoding: $0, as: UTF8.self)) }
            )
        case .malformed(let reason):
            counters.formats[Int(pinned?.rawValue ?? UInt8(LogFormat.allCases.count))].malformed += 1
            if samplesTaken < SourceCounters.maxSamples {
                samplesTaken += 1
                let text = Terminal.escape(String(decoding: line.prefix(200), as: UTF8.self))
                counters.samples.append("\(reason): \(text)")
            }
        }
    }

    /// A request line. A resolver's query whose block line came first is that same request,
    /// counted once (as the block); others are remembered for a block line that may follow.
    @inline(__always)
    func query(_ r: ParsedRequest, arrival: Double) {
        guard r.format == .dnsmasq || r.format == .bind || r.format == .unbound else {
            handle(r, arrival: arrival)
            return
        }
        let time = r.time ?? arrival
        let name = ResolverPairing.hash(name: r.host)
        let client = ResolverPairing.hash(client: r.client)
        if pairing.absorbQuery(name: name, client: client, time: time) {
            counters.formats[Int(r.format.rawValue)].ignored += 1
            return
        }
        let matched = handle(r, arrival: arrival)
        pairing.remember(
            ResolverPairing.Entry(
                name: name,
                client: client,
                time: time,
                isBlock: false,
                paired: false,
                matched: matched
            ),
            client: r.client,
            host: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: scratch.host[0..<scratch.hostCount]))
        )
    }

    /// A resolver's block line: the verdict on the query line before it (counted once, as
    /// that request; an incident it opened is marked blocked), else the request itself.
    func block(_ r: ParsedRequest, arrival: Double) {
        let time = r.time ?? arrival
        let name = ResolverPairing.hash(name: r.host)
        let client = ResolverPairing.hash(client: r.client)
        if let k = pairing.pairBlock(name: name, client: client, time: time) {
            counters.formats[Int(r.format.rawValue)].ignored += 1
            if let m = pairing.matched(k) { sink.verdict(client: m.client, host: m.host, action: r.action, time: time) }
            return
        }
        handle(r, arrival: arrival)
        pairing.remember(ResolverPairing.Entry(name: name, client: client, time: time, isBlock: true, paired: false))
    }

    /// Classifies a request and hands a match to the sink; true when it matched.
    @discardableResult
    @inline(__always)
    func handle(_ r: ParsedRequest, arrival: Double) -> Bool {
        let f = Int(r.format.rawValue)
        counters.formats[f].parsed += 1
        return lists._withUnsafeGuaranteedRef { lists in
            let limitBefore = scratch.patterns.limitHits.count
            guard lists.classify(host: r.host, url: r.url, scratch: scratch) else {
                if scratch.patterns.limitHits.count != limitBefore { counters.matchLimitHits += 1 }
                return false
            }
            counters.formats[f].matched += 1
            // Most severe first (ties by name), ordered on the hits' own severities; the hits
            // are described (Strings for names, files and rules) on the sink's side.
            lists.orderHits(scratch)
            categoryCounts[Int(scratch.hits[0].category)] += 1
            let host = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: scratch.host[0..<scratch.hostCount]))
            scratch.hits.withUnsafeBufferPointer { hits in
                sink.accept(
                    raw: RawMatch(
                        time: r.time ?? arrival,
                        client: r.client,
                        user: r.user,
                        host: host,
                        url: r.url,
                        method: r.method,
                        action: r.action,
                        format: r.format,
                        source: source,
                        hits: hits,
                        lists: lists,
                        generation: generation.number
                    )
                )
            }
            return true
        }
    }

    /// Returns the counters gathered since the last call and starts again from zero.
    public func takeCounters() -> SourceCounters {
        countCategories()
        defer { counters = SourceCounters() }
        return counters
    }

    func countCategories() {
        let names = generation.lists.categories
        for i in categoryCounts.indices where categoryCounts[i] > 0 {
            counters.categories[names[i].name, default: 0] += categoryCounts[i]
            categoryCounts[i] = 0
        }
    }

    /// Processes every complete line in `bytes`; returns the index after the last `\n`
    /// (the start of a partial line, if any). Lines longer than `maxLine` are counted and
    /// skipped.
    public func processLines(_ bytes: UnsafeRawBufferPointer, arrival: Double, maxLine: Int) -> Int {
        refreshGeneration()
        guard let base = bytes.baseAddress else { return 0 }
        var start = 0
        while start < bytes.count {
            guard let nl = memchr(base + start, 0x0A, bytes.count - start) else { break }
            let end = base.distance(to: UnsafeRawPointer(nl))
            let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
            if line.count > maxLine { countTooLong() } else { processRecords(line, arrival: arrival) }
            start = end + 1
        }
        return start
    }

    /// A line that holds a NUL is two records: Squid ends an over-long record with a NUL and
    /// writes the next one straight after it. The record before the NUL ends there (it must
    /// not take the next one's fields), and the next one is kept. One `memchr` per line.
    @inline(__always)
    public func processRecords(_ line: UnsafeRawBufferPointer, arrival: Double) {
        guard let base = line.baseAddress, memchr(base, 0, line.count) != nil else {
            process(line, arrival: arrival)
            return
        }
        var start = 0
        while start < line.count {
            let nul = memchr(base + start, 0, line.count - start)
            let end = nul.map { base.distance(to: UnsafeRawPointer($0)) } ?? line.count
            if end > start { process(UnsafeRawBufferPointer(rebasing: line[start..<end]), arrival: arrival) }
            start = end + 1
        }
    }
}
