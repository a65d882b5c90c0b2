import SystemSupport

/// `esafety lint`: the findings on a set of list roots, and a summary per category.
public enum Lint {
    public struct Report: Sendable {
        public var diagnostics: [Diagnostic]
        /// Per category: name, severity, locked, entry counts.
        public var summary: [(category: Category, counts: CompiledLists.EntryCounts)]
        public var errorCount: Int { diagnostics.filter { $0.level == .error }.count }
        public var warningCount: Int { diagnostics.filter { $0.level == .warning }.count }
    }

    /// Subjects that make catastrophic backtracking show (long runs of one character,
    /// near-misses at the end).
    static let adversarialProbes: [String] = [
        String(repeating: "a", count: 5000),
        String(repeating: "a", count: 5000) + "!",
        "http://" + String(repeating: "a.", count: 2000) + "/",
        String(repeating: "/", count: 4000) + "x",
        String(repeating: "ab", count: 2500) + "!",
        String(repeating: "1", count: 4000) + "x",
        "http://example.com/" + String(repeating: "a/", count: 2000) + "?q=" + String(repeating: "%20", count: 500),
    ]

    public static func run(roots: [String]) -> Report {
        let lists: CompiledLists
        do {
            lists = try ListLoader.load(roots: roots)
        } catch {
            return Report(
                diagnostics: [Diagnostic(.error, .metadata, file: error.file, line: error.line, error.message)],
                summary: []
            )
        }
        return run(lists)
    }

    public static func run(_ lists: CompiledLists, suffixes: PublicSuffix = .load()) -> Report {
        var out = lists.diagnostics
        out += shadowed(lists)
        out += publicSuffixes(lists, suffixes)
        out += patternFindings(lists)
        out += allowlistFindings(lists)
        out.sort { ($0.file, $0.line ?? 0) < ($1.file, $1.line ?? 0) }
        let summary = lists.categories.indices.map { (lists.categories[$0], lists.counts[$0]) }
        return Report(diagnostics: out, summary: summary)
    }

    /// The marker that says a list line's public-suffix entry is meant (a whole TLD blocked).
    public static let publicSuffixMarker = "esafety: public-suffix"

    /// Entries that are a public suffix (`com`, `co.uk`, `||org^`): they would cover every
    /// site under it. An error, unless the line says it is meant (`# esafety: public-suffix`).
    static func publicSuffixes(_ lists: CompiledLists, _ suffixes: PublicSuffix) -> [Diagnostic] {
        var out: [Diagnostic] = []
        var fileLines: [Int: [Substring]] = [:]
        let table = lists.domains
        for k in 0..<table.keyCount {
            let key = table.key(k)
            guard suffixes.isPublicSuffix(key) else { continue }
            for r in table.ruleRange(k) {
                let rule = table.rulesBuffer[r]
                guard Int(rule.category) < lists.categories.count, !lists.categories[Int(rule.category)].isAllowlist
                else { continue }
                let file = Int(rule.file)
                if fileLines[file] == nil {
                    let text = (try? FileSystem.readText(lists.files[file], limit: ListLoader.maxFileBytes)) ?? ""
                    fileLines[file] = text.split(separator: "\n", omittingEmptySubsequences: false)
                }
                let lines = fileLines[file] ?? []
                let index = Int(rule.line) - 1
                if index >= 0, index < lines.count, lines[index].contains(publicSuffixMarker) { continue }
                out.append(
                    Diagnostic(
                        .error,
                        .publicSuffix,
                        file: lists.files[file],
                        line: rule.line,
                        "\(Terminal.escape(key)) is a public suffix: it would block every site under it; if that "
                            + "is meant, end the line with `# \(publicSuffixMarker)`"
                    )
                )
            }
        }
        return out
    }

    /// Entries already covered by a parent domain in the same category.
    static func shadowed(_ lists: CompiledLists) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let table = lists.domains
        for k in 0..<table.keyCount {
            let key = Array(table.key(k).utf8)
            var dot = 0
            while dot < key.count {
                guard let next = key[dot...].firstIndex(of: UInt8(ascii: ".")) else { break }
                dot = next + 1
                let parent = Array(key[dot...])
                let found = parent.withUnsafeBufferPointer { table.find(hash: KeyHash.reversed($0), key: $0) }
                guard let p = found else { continue }
                for r in table.ruleRange(k) {
                    let rule = table.rulesBuffer[r]
                    if let parentRule = table.ruleRange(p).map({ table.rulesBuffer[$0] }).first(where: {
                        $0.category == rule.category
                    }) {
                        out.append(
                            Diagnostic(
                                .warning,
                                .shadowed,
                                file: lists.files[Int(rule.file)],
                                line: rule.line,
                                "\(Terminal.escape(table.key(k))) is already covered by "
                                    + "\(Terminal.escape(table.key(p))) "
                                    + "(\(lists.files[Int(parentRule.file)]):\(parentRule.line))"
                            )
                        )
                    }
                }
            }
        }
        return out
    }

    static func patternFindings(_ lists: CompiledLists) -> [Diagnostic] {
        var out: [Diagnostic] = []
        let set = lists.patterns
        let always = Set(set.alwaysRun)
        let scratch = PCRE2Scratch()
        for (p, rule) in set.rules.enumerated() where set.compiled(p) {
            let file = lists.files[Int(rule.rule.file)]
            if always.contains(p) {
                out.append(
                    Diagnostic(
                        .warning,
                        .noLiteral,
                        file: file,
                        line: rule.rule.line,
                        "pattern has no literal of 3 or more characters to prefilter on; it runs on every URL"
                    )
                )
            }
            for probe in adversarialProbes {
                if set.outcome(of: p, on: probe, scratch: scratch) == .matchLimit {
                    out.append(
                        Diagnostic(
                            .warning,
                            .matchLimit,
                            file: file,
                            line: rule.rule.line,
                            "pattern hits the match limit on an adversarial probe (\(probe.utf8.count) bytes); such "
                                + "URLs count as no match"
                        )
                    )
                    break
                }
            }
        }
        return out
    }

    /// Allowlist entries that would touch a locked category (they never suppress it).
    static func allowlistFindings(_ lists: CompiledLists) -> [Diagnostic] {
        guard let allow = lists.allowlistCategory else { return [] }
        var out: [Diagnostic] = []
        let locked = Set(lists.categories.indices.filter { lists.categories[$0].locked }.map { UInt16($0) })
        if locked.isEmpty { return [] }
        // Hosts that carry locked entries (domains, and hosts of locked URL entries).
        var lockedHosts: [(host: String, rule: Rule, table: EntryTable)] = []
        for table in [lists.domains, lists.urls] {
            for k in 0..<table.keyCount {
                for r in table.ruleRange(k) where locked.contains(table.rulesBuffer[r].category) {
                    let key = table.key(k)
                    let host = key.split(separator: "/", maxSplits: 1).first.map(String.init) ?? key
                    lockedHosts.append((host, table.rulesBuffer[r], table))
                }
            }
        }
        for table in [lists.domains, lists.urls] {
            for k in 0..<table.keyCount {
                for r in table.ruleRange(k) where table.rulesBuffer[r].category == allow {
                    let rule = table.rulesBuffer[r]
                    let key = table.key(k)
                    let host = key.split(separator: "/", maxSplits: 1).first.map(String.init) ?? key
                    for entry in lockedHosts
                    where entry.host == host || entry.host.hasSuffix("." + host) || host.hasSuffix("." + entry.host) {
                        let category = lists.categories[Int(entry.rule.category)].name
                        out.append(
                            Diagnostic(
                                .warning,
                                .allowlistTouchesLocked,
                                file: lists.files[Int(rule.file)],
                                line: rule.line,
                                "allowlist entry \(Terminal.escape(key)) touches locked category \(category) "
                                    + "(\(lists.files[Int(entry.rule.file)]):\(entry.rule.line)); locked categories "
                                    + "are never suppressed"
                            )
                        )
                        break
                    }
                }
            }
        }
        return out
    }
}
