/// A pattern from an `expressions` file with where it came from.
public struct PatternRule: Sendable {
    public var source: String
    public var rule: Rule
}

/// All PCRE2 patterns of a generation, with a literal prefilter so that a URL runs only
/// the patterns whose required literal occurs in it.
///
/// Each pattern's required literals (see `PatternAnalyzer`) are anchored by one 4-byte
/// (or, for 3-byte literals, 3-byte) gram, chosen to be rare among all anchors. A URL is
/// scanned once: at each position a bitmap test (128 KiB, cache-resident) rejects almost
/// every gram; a hit looks the gram up, verifies the whole literal, and marks its pattern.
/// Patterns without a usable literal run on every subject (the always-run bucket).
/// - Complexity: O(subject length + candidates), nearly flat in the number of patterns.
public final class PatternSet: Sendable {
    public let rules: [PatternRule]
    let regexes: [PCRE2Regex?]
    /// The same, kept alive by `regexes` and run without a reference count: every ingest
    /// thread runs the same patterns, and a retain and release per run on a shared object
    /// passes its cache line between the cores.
    let unretained: [Unmanaged<PCRE2Regex>?]
    /// Patterns with no literal to prefilter on.
    public let alwaysRun: [Int]

    // Prefilter.
    let bitmap4: [UInt64]
    let bitmap3: [UInt64]
    let has3: Bool
    /// Open addressing over grams: per slot the gram and its range of `anchors`.
    let gramKeys: [UInt32]
    let gramRanges: [UInt32]
    let gramEnds: [UInt32]
    let anchors: [Anchor]
    let literalPool: [UInt8]

    struct Anchor: Sendable {
        var literalStart: UInt32
        var literalLength: UInt16
        var gramOffset: UInt16
        var pattern: UInt32
    }

    static let bitmapBits = 20

    /// Builds the set; patterns that fail to compile are reported through `onError` and
    /// never match.
    init(rules: [PatternRule], onError: (Int, PCRE2Regex.CompileError) -> Void) {
        self.rules = rules
        var regexes: [PCRE2Regex?] = []
        var always: [Int] = []
        var literalSets: [(Int, [[UInt8]])] = []
        for (index, rule) in rules.enumerated() {
            do {
                regexes.append(try PCRE2Regex(rule.source))
            } catch {
                onError(index, error)
                regexes.append(nil)
                continue
            }
            if let lits = PatternAnalyzer.requiredLiterals(rule.source), lits.allSatisfy({ $0.count >= 3 }) {
                literalSets.append((index, lits))
            } else {
                always.append(index)
            }
        }
        self.regexes = regexes
        self.unretained = regexes.map { $0.map(Unmanaged.passUnretained) }
        self.alwaysRun = always

        // Gram frequencies over all literals, to anchor each literal on a rare gram.
        var frequency: [UInt32: Int] = [:]
        for (_, lits) in literalSets {
            for lit in lits where lit.count >= 4 {
                for k in 0...(lit.count - 4) { frequency[Self.gram4(lit, k), default: 0] += 1 }
            }
        }
        var byGram: [UInt32: [Anchor]] = [:]
        var pool: [UInt8] = []
        var bitmap4 = [UInt64](repeating: 0, count: (1 << Self.bitmapBits) / 64)
        var bitmap3 = bitmap4
        var has3 = false
        for (pattern, lits) in literalSets {
            for lit in lits {
                let start = UInt32(pool.count)
                pool.append(contentsOf: lit)
                var key: UInt32
                var offset = 0
                if lit.count >= 4 {
                    var bestCost = Int.max
                    for k in 0...(lit.count - 4) {
                        let g = Self.gram4(lit, k)
                        let cost = (frequency[g] ?? 0) + (Self.commonGrams.contains(g) ? 1_000_000 : 0)
                        if cost < bestCost {
                            bestCost = cost
                            offset = k
                        }
                    }
                    key = Self.gram4(lit, offset)
                    Self.set(&bitmap4, Self.bit(key))
                } else {
                    key = Self.gram3(lit, 0)
                    Self.set(&bitmap3, Self.bit(key))
                    has3 = true
                }
                byGram[key, default: []].append(
                    Anchor(
                        literalStart: start,
                        literalLength: UInt16(lit.count),
                        gramOffset: UInt16(offset),
                        pattern: UInt32(pattern)
                    )
                )
            }
        }
        // Flatten byGram into an open-addressing table of grams -> anchor ranges.
        let capacity = max(2, byGram.count * 2)
        var keys = [UInt32](repeating: 0, count: capacity)
        var occupied = [Bool](repeating: false, count: capacity)
        var ends = [UInt32](repeating: 0, count: capacity)
        var starts = [UInt32](repeating: 0, count: capacity)
        var anchors: [Anchor] = []
        for (gram, list) in byGram.sorted(by: { $0.key < $1.key }) {
            var i = Int(Self.mix(gram) % UInt32(capacity))
            while occupied[i] { i = (i + 1) % capacity }
            occupied[i] = true
            keys[i] = gram
            starts[i] = UInt32(anchors.count)
            anchors.append(contentsOf: list)
            ends[i] = UInt32(anchors.count)
        }
        // Every gram has at least one anchor, so a slot is occupied exactly when its end > 0.
        self.gramKeys = keys
        self.gramRanges = starts
        self.gramEnds = ends
        self.anchors = anchors
        self.literalPool = pool
        self.bitmap4 = bitmap4
        self.bitmap3 = bitmap3
        self.has3 = has3
    }

    public var count: Int { rules.count }
    public var prefilteredCount: Int { rules.count - alwaysRun.count - regexes.filter { $0 == nil }.count }

    /// Grams that occur in nearly every URL: never chosen as anchors when another exists.
    static let commonGrams: Set<UInt32> = {
        let words = [
            "http", "ttp:", "tp:/", "p://", "ttps", "tps:", "ps:/", "://w", "//ww", "/www", "www.",
            ".com", "com/", ".htm", "html", ".php", "inde", "ndex", "dex.", ".net", ".org", "/wp-",
        ]
        return Set(words.map { gram4(Array($0.utf8), 0) })
    }()

    @inline(__always) static func gram4(_ b: [UInt8], _ k: Int) -> UInt32 {
        UInt32(b[k]) | UInt32(b[k + 1]) << 8 | UInt32(b[k + 2]) << 16 | UInt32(b[k + 3]) << 24
    }
    @inline(__always) static func gram3(_ b: [UInt8], _ k: Int) -> UInt32 {
        UInt32(b[k]) | UInt32(b[k + 1]) << 8 | UInt32(b[k + 2]) << 16
    }
    @inline(__always) static func mix(_ g: UInt32) -> UInt32 { (g &* 0x9E37_79B1) ^ (g >> 15) }
    @inline(__always) static func bit(_ g: UInt32) -> Int { Int((g &* 0x9E37_79B1) >> UInt32(32 - bitmapBits)) }
    @inline(__always) static func set(_ bm: inout [UInt64], _ bit: Int) { bm[bit >> 6] |= 1 << UInt64(bit & 63) }
    @inline(__always) static func test(_ bm: UnsafeBufferPointer<UInt64>, _ bit: Int) -> Bool {
        bm[bit >> 6] & (1 << UInt64(bit & 63)) != 0
    }

    /// Marks in `scratch` the patterns whose literal occurs in `subject` (lower-cased).
    @inline(__always)
    func collectCandidates(_ subject: UnsafeBufferPointer<UInt8>, _ scratch: PatternScratch) {
        scratch.candidates.clearKeepingCapacity()
        scratch.stamp &+= 1
        if scratch.stamp == 0 {
            for i in scratch.stamps.indices { scratch.stamps[i] = 0 }
            scratch.stamp = 1
        }
        if anchors.isEmpty { return }
        let n = subject.count
        guard n >= 3 else { return }
        bitmap4.withUnsafeBufferPointer { bm4 in
            bitmap3.withUnsafeBufferPointer { bm3 in
                var w: UInt32 = UInt32(subject[0]) | UInt32(subject[1]) << 8 | UInt32(subject[2]) << 16
                var i = 0
                while i + 3 <= n {
                    if has3 {
                        let g3 = w & 0x00FF_FFFF
                        if Self.test(bm3, Self.bit(g3)) { probe(g3, at: i, subject, scratch) }
                    }
                    if i + 4 <= n {
                        w = (w & 0x00FF_FFFF) | UInt32(subject[i + 3]) << 24
                        if Self.test(bm4, Self.bit(w)) { probe(w, at: i, subject, scratch) }
                    }
                    w >>= 8
                    i += 1
                }
            }
        }
    }

    @inline(never)
    private func probe(
        _ gram: UInt32,
        at position: Int,
        _ subject: UnsafeBufferPointer<UInt8>,
        _ scratch: PatternScratch
    ) {
        let capacity = gramKeys.count
        var i = Int(Self.mix(gram) % UInt32(capacity))
        while gramEnds[i] != 0 {
            if gramKeys[i] == gram {
                for a in Int(gramRanges[i])..<Int(gramEnds[i]) {
                    let anchor = anchors[a]
                    let start = position - Int(anchor.gramOffset)
                    let length = Int(anchor.literalLength)
                    guard start >= 0, start + length <= subject.count else { continue }
                    if scratch.stamps[Int(anchor.pattern)] == scratch.stamp { continue }
                    var equal = true
                    var k = 0
                    while k < length {
                        if literalPool[Int(anchor.literalStart) + k] != subject[start + k] {
                            equal = false
                            break
                        }
                        k += 1
                    }
                    if equal {
                        scratch.stamps[Int(anchor.pattern)] = scratch.stamp
                        scratch.candidates.append(Int(anchor.pattern))
                    }
                }
                return
            }
            i += 1
            if i == capacity { i = 0 }
        }
    }

    /// The patterns that match `subject`, in `scratch.matched` (candidates first, then the
    /// always-run bucket); a pattern that reaches the match limit is counted in `scratch` and
    /// does not match. No closure: the caller reads the list, so nothing it shares with the
    /// other ingest threads is captured, retained and released per line.
    @inline(__always)
    func match(_ subject: UnsafeBufferPointer<UInt8>, _ scratch: PatternScratch) {
        scratch.matched.clearKeepingCapacity()
        if rules.isEmpty { return }
        collectCandidates(subject, scratch)
        for i in scratch.candidates.indices { run(scratch.candidates[i], subject, scratch) }
        for p in alwaysRun { run(p, subject, scratch) }
    }

    @inline(__always)
    private func run(_ p: Int, _ subject: UnsafeBufferPointer<UInt8>, _ scratch: PatternScratch) {
        guard let regex = unretained[p] else { return }
        scratch.patternsRun += 1
        switch regex._withUnsafeGuaranteedRef({ $0.match(subject, scratch: scratch.pcre) }) {
        case .match: scratch.matched.append(p)
        case .noMatch: break
        case .matchLimit, .error: scratch.limitHits[p, default: 0] += 1
        }
    }

    /// Runs pattern `p` on `subject` (used by lint's adversarial probe).
    public func outcome(of p: Int, on subject: String, scratch: PCRE2Scratch) -> PCRE2Regex.Outcome? {
        guard let regex = regexes[p] else { return nil }
        var s = subject
        return s.withUTF8 { regex.match($0, scratch: scratch) }
    }

    /// Whether pattern `p` compiled.
    public func compiled(_ p: Int) -> Bool { regexes[p] != nil }
}

/// Per-thread state for pattern matching.
public final class PatternScratch {
    var stamps: [UInt32]
    var stamp: UInt32 = 0
    var candidates: [Int] = []
    /// The patterns the last `PatternSet.match` found.
    var matched: [Int] = []
    let pcre: PCRE2Scratch
    /// Patterns run (after the prefilter), for benchmarks.
    public internal(set) var patternsRun = 0
    /// Pattern index -> times it hit the match limit (counted as no match).
    public internal(set) var limitHits: [Int: Int] = [:]

    init(patternCount: Int, matchLimit: UInt32) {
        stamps = [UInt32](repeating: 0, count: patternCount)
        candidates.reserveCapacity(64)
        pcre = PCRE2Scratch(matchLimit: matchLimit)
    }
}
