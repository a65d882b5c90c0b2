import CShims
import SystemSupport

/// One immutable generation of compiled lists: every category's domains, URLs and
/// patterns, and the allowlist. Build with `ListLoader`, or load a snapshot file.
/// Shared read-only between threads; each thread brings its own `ClassifyScratch`.
public final class CompiledLists: Sendable {
    /// Nothing: it keeps the fields below out of the cache line of the object's reference
    /// count. The incident thread retains and releases the lists once per match it handles;
    /// had `domains` shared that line, every classification on the ingest threads would read
    /// a line the other core had just written.
    private let refcountLine: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    public let categories: [Category]
    public let files: [String]
    public let domains: EntryTable
    public let urls: EntryTable
    public let patterns: PatternSet
    /// Index of the allowlist pseudo-category, if any list root has one.
    let allowlistCategory: UInt16?
    /// Entries per category (domains, urls, patterns), for status and reload checks.
    public let counts: [EntryCounts]
    /// Warnings found while loading (invalid entries, duplicates, bad patterns).
    public let diagnostics: [Diagnostic]
    /// The list roots or the snapshot this generation came from.
    public let sources: [String]

    public struct EntryCounts: Sendable, Equatable {
        public var domains = 0, urls = 0, patterns = 0
        public var total: Int { domains + urls + patterns }
        public init(domains: Int = 0, urls: Int = 0, patterns: Int = 0) {
            self.domains = domains
            self.urls = urls
            self.patterns = patterns
        }
    }

    init(
        categories: [Category],
        files: [String],
        domains: EntryTable,
        urls: EntryTable,
        patterns: PatternSet,
        counts: [EntryCounts],
        diagnostics: [Diagnostic],
        sources: [String]
    ) {
        self.categories = categories
        self.files = files
        self.domains = domains
        self.urls = urls
        self.patterns = patterns
        self.counts = counts
        self.diagnostics = diagnostics
        self.sources = sources
        self.allowlistCategory = categories.firstIndex(where: \.isAllowlist).map { UInt16($0) }
        self.severities = categories.map(\.severity)
        self.lockedFlags = categories.map(\.locked)
    }

    let severities: [Severity]
    let lockedFlags: [Bool]

    public func category(named name: String) -> Int? { categories.firstIndex { $0.name == name } }

    public func makeScratch(matchLimit: UInt32 = PCRE2Regex.defaultMatchLimit) -> ClassifyScratch {
        ClassifyScratch(patternCount: patterns.count, matchLimit: matchLimit)
    }

    // MARK: - Classification (the hot path)

    /// Classifies a request given as raw bytes: the host as the log wrote it and, when
    /// known, the full URL. Results are left in `scratch.hits` (effective matches),
    /// `scratch.suppressed` and `scratch.allowedBy`. Returns whether anything matched.
    /// - Complexity: O(host labels + URL length + candidate patterns); no allocation for
    ///   ASCII input.
    @discardableResult
    public func classify(host: UnsafeRawBufferPointer, url: UnsafeRawBufferPointer?, scratch: ClassifyScratch) -> Bool {
        scratch.reset()
        let outcome = Host.normalize(host, into: scratch.host)
        switch outcome {
        case .ok(let count, let kind):
            scratch.hostCount = count
            scratch.hostKind = kind
        case .invalid:
            scratch.invalidHost = true
            return false
        case .needsIDNA:
            guard let (ascii, kind) = Host.normalize(String(decoding: host, as: UTF8.self)) else {
                scratch.invalidHost = true
                return false
            }
            var a = ascii
            scratch.hostCount = a.withUTF8 { utf8 in
                let n = min(utf8.count, scratch.host.count)
                for i in 0..<n { scratch.host[i] = utf8[i] }
                return n
            }
            scratch.hostKind = kind
        }
        let hostBytes = UnsafeBufferPointer(rebasing: scratch.host[0..<scratch.hostCount])
        lookupDomain(hostBytes, kind: scratch.hostKind, scratch: scratch)

        var subject = hostBytes
        if let url, url.count > 0 {
            let n = min(url.count, scratch.url.count)
            for i in 0..<n { scratch.url[i] = Host.lower(url[i]) }
            subject = UnsafeBufferPointer(rebasing: scratch.url[0..<n])
            if urls.keyCount > 0 {
                lookupURL(UnsafeRawBufferPointer(subject), host: hostBytes, scratch: scratch)
            }
        }
        if patterns.count > 0 {
            // The lists' own arrays read in place, and no closure: a local copy of `severities`,
            // or a closure capturing the lists, was a retain and a release per line of an object
            // every ingest thread shares.
            patterns.match(subject, scratch.patterns)
            for p in scratch.patterns.matched {
                let rule = patterns.rules[p].rule
                scratch.raw.append(
                    Hit(
                        category: rule.category,
                        kind: .pattern,
                        severity: severities[Int(rule.category)],
                        rule: UInt32(p)
                    )
                )
            }
        }
        return settle(scratch)
    }

    /// Starts loading the table slots that classifying `host` will probe, so that a
    /// caller working through a batch of lines can overlap the cache misses of the next
    /// host with the work on this one. A hint only: it changes no result.
    /// - Complexity: O(host length), no allocation.
    @inline(__always)
    public func prefetch(host: UnsafeRawBufferPointer) {
        guard domains.keyCount > 0, let slots = domains.slots.baseAddress else { return }
        var end = host.count
        while end > 0, host[end - 1] == UInt8(ascii: ".") { end -= 1 }
        var h = KeyHash.seed
        var i = end
        while i > 0 {
            i -= 1
            let b = host[i]
            if b == UInt8(ascii: ":") || b == UInt8(ascii: "]") { return }
            h = KeyHash.step(h, Host.lower(b))
            if i == 0 || host[i - 1] == UInt8(ascii: ".") {
                esafety_prefetch(slots + domains.home(KeyHash.finish(h)))
            }
        }
    }

    /// Suffix lookups right to left: `a.b.example.com` probes `com`, `example.com`,
    /// `b.example.com`, `a.b.example.com` with one running hash. All suffix hashes are
    /// computed first and their slots loaded together, so the cache misses of one host
    /// overlap instead of following one another.
    @inline(__always)
    func lookupDomain(_ host: UnsafeBufferPointer<UInt8>, kind: HostKind, scratch: ClassifyScratch) {
        guard domains.keyCount > 0 else { return }
        if kind != .name {
            if let k = domains.find(hash: KeyHash.reversed(host), key: host) { addDomainHits(k, exact: true, scratch) }
            return
        }
        let maxProbes = 16
        withUnsafeTemporaryAllocation(of: (hash: UInt64, start: Int, home: Int, slot: UInt64).self, capacity: maxProbes)
        { probes in
            var count = 0
            var h = KeyHash.seed
            var i = host.count
            while i > 0 {
                i -= 1
                h = KeyHash.step(h, host[i])
                if i == 0 || host[i - 1] == UInt8(ascii: ".") {
                    if count == maxProbes {
                        // Very deep names: drop the shortest suffix probes' overlap and go on one by one.
                        let suffix = UnsafeBufferPointer(rebasing: host[i...])
                        if let k = domains.find(hash: KeyHash.finish(h), key: suffix),
                            i == 0 || !Self.isIPv4Shaped(suffix)
                        {
                            addDomainHits(k, exact: i == 0, scratch)
                        }
                        continue
                    }
                    let hash = KeyHash.finish(h)
                    let home = domains.home(hash)
                    probes[count] = (hash, i, home, domains.slots[home])
                    count += 1
                }
            }
            for p in 0..<count {
                let probe = probes[p]
                if probe.slot == 0 { continue }
                let suffix = UnsafeBufferPointer(rebasing: host[probe.start...])
                if let k = domains.find(hash: probe.hash, from: probe.home, key: suffix),
                    probe.start == 0 || !Self.isIPv4Shaped(suffix)
                {
                    addDomainHits(k, exact: probe.start == 0, scratch)
                }
            }
        }
    }

    /// An address entry matches only the whole host, never as a suffix of a name.
    static func isIPv4Shaped(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var dots = 0
        for b in bytes {
            if b == UInt8(ascii: ".") { dots += 1 } else if b < 0x30 || b > 0x39 { return false }
        }
        return dots == 3
    }

    @inline(__always)
    func addDomainHits(_ k: Int, exact: Bool, _ scratch: ClassifyScratch) {
        for r in domains.ruleRange(k) {
            let rule = domains.rulesBuffer[r]
            if exact && rule.subdomainsOnly { continue }
            scratch.raw.append(
                Hit(
                    category: rule.category,
                    kind: .domain,
                    severity: severities[Int(rule.category)],
                    rule: UInt32(r),
                    key: UInt32(k)
                )
            )
        }
    }

    /// URL prefixes: `host/path` keys probed at each `/` and at `?` and the end of the path,
    /// after one probe of the bare host (hosts without URL entries stop there).
    @inline(__always)
    func lookupURL(_ url: UnsafeRawBufferPointer, host: UnsafeBufferPointer<UInt8>, scratch: ClassifyScratch) {
        let parts = Host.splitURL(url)
        // Host without www.
        var hostStart = 0
        if host.count > 4, host[0] == 0x77, host[1] == 0x77, host[2] == 0x77, host[3] == 0x2E { hostStart = 4 }
        let bareHost = UnsafeBufferPointer(rebasing: host[hostStart...])
        // Key = bareHost + path, built in scratch.key.
        var h = KeyHash.seed
        var n = 0
        for b in bareHost {
            h = KeyHash.step(h, b)
            scratch.key[n] = b
            n += 1
        }
        let hostKey = UnsafeBufferPointer(rebasing: scratch.key[0..<n])
        guard let hostIndex = urls.find(hash: KeyHash.finish(h), key: hostKey) else { return }
        addURLHits(hostIndex, scratch)
        var p = parts.path.lowerBound
        let end = parts.path.upperBound
        let hostLength = bareHost.count
        var lastProbed = 0
        var inQuery = false
        let capacity = scratch.key.count
        // The path without its query, trailing slashes removed (keys are stored so).
        func probePath(_ n: Int, _ h: UInt64) {
            var m = n
            while m > hostLength, scratch.key[m - 1] == UInt8(ascii: "/") { m -= 1 }
            guard m > hostLength, m != lastProbed else { return }
            var hh = h
            if m != n {
                hh = KeyHash.seed
                for i in 0..<m { hh = KeyHash.step(hh, scratch.key[i]) }
            }
            probeURL(hh, m, scratch)
            lastProbed = m
        }
        while p < end, n < capacity {
            let c = url[p]
            if !inQuery {
                if c == UInt8(ascii: "?") {
                    probePath(n, h)
                    inQuery = true
                } else if c == UInt8(ascii: "/") && n > hostLength && scratch.key[n - 1] != UInt8(ascii: "/") {
                    probeURL(h, n, scratch)
                    lastProbed = n
                }
            }
            h = KeyHash.step(h, c)
            scratch.key[n] = c
            n += 1
            p += 1
        }
        if inQuery {
            // Entries that carry a query string match the whole path and query.
            probeURL(h, n, scratch)
        } else {
            probePath(n, h)
        }
    }

    @inline(__always)
    func probeURL(_ h: UInt64, _ n: Int, _ scratch: ClassifyScratch) {
        let key = UnsafeBufferPointer(rebasing: scratch.key[0..<n])
        if let k = urls.find(hash: KeyHash.finish(h), key: key) { addURLHits(k, scratch) }
    }

    @inline(__always)
    func addURLHits(_ k: Int, _ scratch: ClassifyScratch) {
        for r in urls.ruleRange(k) {
            let rule = urls.rulesBuffer[r]
            scratch.raw.append(
                Hit(
                    category: rule.category,
                    kind: .url,
                    severity: severities[Int(rule.category)],
                    rule: UInt32(r),
                    key: UInt32(k)
                )
            )
        }
    }

    /// Applies the allowlist: it suppresses unlocked categories only.
    @inline(__always)
    func settle(_ scratch: ClassifyScratch) -> Bool {
        if scratch.raw.isEmpty { return false }
        var allowed = false
        if let allow = allowlistCategory {
            for hit in scratch.raw where hit.category == allow {
                if scratch.allowedBy == nil { scratch.allowedBy = hit }
                allowed = true
            }
        }
        // One hit per category: the most specific rule (URL over domain over pattern; a
        // longer domain suffix or URL prefix over a shorter one, as they come later).
        for hit in scratch.raw where hit.category != allowlistCategory {
            if allowed && !lockedFlags[Int(hit.category)] {
                Self.merge(hit, into: &scratch.suppressed)
            } else {
                Self.merge(hit, into: &scratch.hits)
            }
        }
        return !scratch.hits.isEmpty
    }

    @inline(__always)
    static func merge(_ hit: Hit, into list: inout [Hit]) {
        for i in list.indices where list[i].category == hit.category {
            if specificity(hit.kind) >= specificity(list[i].kind) { list[i] = hit }
            return
        }
        list.append(hit)
    }

    @inline(__always)
    static func specificity(_ kind: MatchKind) -> Int {
        switch kind {
        case .url: 2
        case .domain: 1
        case .pattern: 0
        }
    }

    // MARK: - Reading results

    /// Orders a classification's hits most severe first, ties by category name.
    @inline(__always)
    public func orderHits(_ scratch: ClassifyScratch) {
        guard scratch.hits.count > 1 else { return }
        scratch.hits.sort { a, b in
            a.severity != b.severity
                ? a.severity > b.severity : categories[Int(a.category)].name < categories[Int(b.category)].name
        }
    }

    public func describe(_ hit: Hit) -> MatchDetail {
        let c = Int(hit.category)
        let rule: Rule
        let text: String
        switch hit.kind {
        case .domain:
            rule = domains.rulesBuffer[Int(hit.rule)]
            let key = domains.key(hit.key != .max ? Int(hit.key) : domains.keyIndex(ofRule: Int(hit.rule)))
            text = rule.subdomainsOnly ? "*." + key : key
        case .url:
            rule = urls.rulesBuffer[Int(hit.rule)]
            text = urls.key(hit.key != .max ? Int(hit.key) : urls.keyIndex(ofRule: Int(hit.rule)))
        case .pattern:
            rule = patterns.rules[Int(hit.rule)].rule
            text = patterns.rules[Int(hit.rule)].source
        }
        var detail = MatchDetail(
            name: categories[c].name,
            severity: categories[c].severity,
            locked: categories[c].locked,
            kind: hit.kind,
            file: files[Int(rule.file)],
            line: rule.line,
            rule: text
        )
        detail.displayName = categories[c].displayName
        return detail
    }

    /// Classifies a target written by a person: a URL (`https://x.example/a`), a host
    /// (`x.example`, `10.0.0.1`, `[::1]:443`) or `host:port`.
    public func classify(target: String, scratch: ClassifyScratch? = nil) -> Verdict {
        let scratch = scratch ?? makeScratch()
        var text = target
        let trimmed = text.trimmingCharacters(in: " \t\r\n")
        text = trimmed
        let (hostText, urlText) = Self.splitTarget(text)
        var hostCopy = hostText
        var urlCopy = urlText
        hostCopy.withUTF8 { hostBytes in
            if var u = urlCopy {
                u.withUTF8 { urlBytes in
                    _ = classify(
                        host: UnsafeRawBufferPointer(hostBytes),
                        url: UnsafeRawBufferPointer(urlBytes),
                        scratch: scratch
                    )
                }
                urlCopy = u
            } else {
                _ = classify(host: UnsafeRawBufferPointer(hostBytes), url: nil, scratch: scratch)
            }
        }
        if scratch.invalidHost {
            return Verdict(
                target: target,
                host: hostText,
                url: urlText,
                categories: [],
                suppressed: [],
                allowedBy: nil,
                error: "not a host or URL"
            )
        }
        let host = String(decoding: scratch.host[0..<scratch.hostCount], as: UTF8.self)
        let order: (MatchDetail, MatchDetail) -> Bool = { a, b in
            let sa = a.severity
            let sb = b.severity
            if sa != sb { return sa > sb }
            if a.name != b.name { return a.name < b.name }
            return a.kind.description < b.kind.description
        }
        return Verdict(
            target: target,
            host: host,
            url: urlText,
            categories: scratch.hits.map(describe).sorted(by: order),
            suppressed: scratch.suppressed.map(describe).sorted(by: order),
            allowedBy: scratch.allowedBy.map(describe),
            error: nil
        )
    }

    /// Splits a target into its host and, for URLs with a path, the URL.
    static func splitTarget(_ text: String) -> (String, String?) {
        var t = text
        return t.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            let parts = Host.splitURL(raw)
            let host = String(decoding: raw[parts.authority], as: UTF8.self)
            let isURL = parts.hasScheme || !parts.path.isEmpty
            return (host, isURL ? text : nil)
        }
    }
}

/// Per-thread scratch for `CompiledLists.classify`: buffers, results and pattern state.
/// Create one per thread with `CompiledLists.makeScratch()`; never share it.
public final class ClassifyScratch {
    public let host: UnsafeMutableBufferPointer<UInt8>
    public internal(set) var hostCount = 0
    public internal(set) var hostKind: HostKind = .name
    public internal(set) var invalidHost = false
    let url: UnsafeMutableBufferPointer<UInt8>
    let key: UnsafeMutableBufferPointer<UInt8>
    var raw: [Hit] = []
    /// Effective matches of the last call.
    public internal(set) var hits: [Hit] = []
    /// Matches the allowlist suppressed.
    public internal(set) var suppressed: [Hit] = []
    /// The allowlist rule that applied.
    public internal(set) var allowedBy: Hit?
    public let patterns: PatternScratch

    /// URLs longer than this are classified on their first `maxURL` bytes.
    static let maxURL = 8192

    init(patternCount: Int, matchLimit: UInt32) {
        host = .allocate(capacity: Host.maxLength)
        url = .allocate(capacity: Self.maxURL)
        key = .allocate(capacity: Self.maxURL)
        raw.reserveCapacity(16)
        hits.reserveCapacity(16)
        suppressed.reserveCapacity(4)
        patterns = PatternScratch(patternCount: patternCount, matchLimit: matchLimit)
    }

    deinit {
        host.deallocate()
        url.deallocate()
        key.deallocate()
    }

    @inline(__always)
    func reset() {
        raw.clearKeepingCapacity()
        hits.clearKeepingCapacity()
        suppressed.clearKeepingCapacity()
        allowedBy = nil
        invalidHost = false
        hostCount = 0
    }
}

extension Array {
    /// Removes every element, keeping the capacity; an empty array is left alone. Per line,
    /// and most lines match nothing: `removeAll(keepingCapacity:)` on an empty array still
    /// called the standard library's generic `replaceSubrange` and a uniqueness check, three
    /// of each per line (about 3% of an ingest thread).
    @inline(__always)
    mutating func clearKeepingCapacity() {
        if !isEmpty { removeAll(keepingCapacity: true) }
    }
}
