/// Finds literals that a PCRE2 pattern requires, for the prefilter.
///
/// The result is a set of lower-cased strings such that every subject the pattern
/// matches contains at least one of them. `nil` means no such set was found (the
/// pattern goes to the always-run bucket). The analysis is conservative: whatever it
/// does not understand yields `nil`, never a wrong literal.
enum PatternAnalyzer {
    static func requiredLiterals(_ pattern: String) -> [[UInt8]]? {
        var parser = Parser(bytes: Array(pattern.utf8))
        guard let result = parser.alternation(), parser.atEnd else { return nil }
        return result.isEmpty ? nil : result
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0
        var failed = false

        init(bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { i >= bytes.count && !failed }

        mutating func alternation() -> [[UInt8]]? {
            var branches: [[[UInt8]]?] = [sequence()]
            while !failed, i < bytes.count, bytes[i] == UInt8(ascii: "|") {
                i += 1
                branches.append(sequence())
            }
            if failed { return nil }
            var union: [[UInt8]] = []
            for b in branches {
                guard let b else { return nil }
                for lit in b where !union.contains(lit) { union.append(lit) }
            }
            return union
        }

        private static func score(_ set: [[UInt8]]?) -> Int {
            guard let set, !set.isEmpty else { return -1 }
            // Prefer sets whose shortest literal is longest, then smaller sets.
            return set.map(\.count).min()! * 16 - min(set.count, 15)
        }

        mutating func sequence() -> [[UInt8]]? {
            var best: [[UInt8]]? = nil
            var run: [UInt8] = []
            func consider(_ candidate: [[UInt8]]?) {
                if Self.score(candidate) > Self.score(best) { best = candidate }
            }
            func flush() {
                if !run.isEmpty { consider([run]) }
                run = []
            }
            while !failed, i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "|") || c == UInt8(ascii: ")") { break }
                enum Atom {
                    case literal(UInt8)
                    case other
                    case group([[UInt8]]?)
                }
                var atom: Atom
                switch c {
                case UInt8(ascii: "\\"):
                    guard i + 1 < bytes.count else {
                        failed = true
                        return nil
                    }
                    let e = bytes[i + 1]
                    i += 2
                    if isAlnum(e) {
                        // \d \w \s \b \x.. \p{..} \Q..\E backreferences: not a literal.
                        if e == UInt8(ascii: "Q") || e == UInt8(ascii: "x") || e == UInt8(ascii: "p")
                            || e == UInt8(ascii: "P") || e == UInt8(ascii: "k") || e == UInt8(ascii: "g")
                            || e == UInt8(ascii: "c") || e == UInt8(ascii: "o") || e == UInt8(ascii: "N")
                        {
                            failed = true
                            return nil
                        }
                        atom = .other
                    } else {
                        atom = .literal(e)
                    }
                case UInt8(ascii: "["):
                    skipClass()
                    atom = .other
                case UInt8(ascii: "("):
                    i += 1
                    if i < bytes.count, bytes[i] == UInt8(ascii: "?") {
                        guard i + 1 < bytes.count else {
                            failed = true
                            return nil
                        }
                        let k = bytes[i + 1]
                        if k == UInt8(ascii: ":") {
                            i += 2
                            atom = .group(alternation())
                        } else if k == UInt8(ascii: "=") || k == UInt8(ascii: "!") || k == UInt8(ascii: "<") {
                            // Lookaround: skip it; it consumes nothing.
                            i += 2
                            _ = alternation()
                            atom = .other
                        } else if k == UInt8(ascii: "i") || k == UInt8(ascii: "-") || k == UInt8(ascii: "s")
                            || k == UInt8(ascii: "m")
                        {
                            // Inline flags "(?i)" or "(?i:...)"; "x" changes syntax: give up.
                            var j = i + 1
                            while j < bytes.count, bytes[j] != UInt8(ascii: ")"), bytes[j] != UInt8(ascii: ":") {
                                if bytes[j] == UInt8(ascii: "x") {
                                    failed = true
                                    return nil
                                }
                                j += 1
                            }
                            guard j < bytes.count else {
                                failed = true
                                return nil
                            }
                            if bytes[j] == UInt8(ascii: ")") {
                                i = j + 1
                                continue
                            }
                            i = j + 1
                            atom = .group(alternation())
                        } else {
                            failed = true
                            return nil
                        }
                    } else if i < bytes.count, bytes[i] == UInt8(ascii: "*") {
                        failed = true  // (*VERB)
                        return nil
                    } else {
                        atom = .group(alternation())
                    }
                    guard !failed, i < bytes.count, bytes[i] == UInt8(ascii: ")") else {
                        failed = true
                        return nil
                    }
                    i += 1
                case UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "$"):
                    i += 1
                    atom = .other
                case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"), UInt8(ascii: "{"):
                    // A quantifier with nothing before it: let PCRE2 judge; no literal here.
                    failed = true
                    return nil
                default:
                    i += 1
                    atom = .literal(c)
                }
                // Quantifier?
                var optional = false
                var repeated = false
                if i < bytes.count {
                    let q = bytes[i]
                    if q == UInt8(ascii: "*") || q == UInt8(ascii: "?") {
                        optional = true
                        i += 1
                    } else if q == UInt8(ascii: "+") {
                        repeated = true
                        i += 1
                    } else if q == UInt8(ascii: "{"), let (minimum, next) = braces(at: i) {
                        optional = minimum == 0
                        repeated = true
                        i = next
                    }
                    if optional || repeated, i < bytes.count,
                        bytes[i] == UInt8(ascii: "?") || bytes[i] == UInt8(ascii: "+")
                    {
                        i += 1  // lazy or possessive
                    }
                }
                switch atom {
                case .literal(let b):
                    if optional {
                        flush()
                    } else {
                        run.append(Host.lower(b))
                        if repeated { flush() }
                    }
                case .other:
                    flush()
                case .group(let set):
                    flush()
                    if !optional { consider(set) }
                }
            }
            flush()
            return best
        }

        mutating func skipClass() {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "^") { i += 1 }
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1 }
            while i < bytes.count, bytes[i] != UInt8(ascii: "]") {
                if bytes[i] == UInt8(ascii: "\\") {
                    i += 1
                } else if bytes[i] == UInt8(ascii: "["), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: ":") {
                    // [:alpha:]
                    i += 2
                    while i < bytes.count, bytes[i] != UInt8(ascii: "]") { i += 1 }
                }
                i += 1
            }
            if i >= bytes.count { failed = true } else { i += 1 }
        }

        /// `{n}`, `{n,}`, `{n,m}`: the minimum and the index after `}`; nil if not a quantifier.
        func braces(at start: Int) -> (Int, Int)? {
            var j = start + 1
            var n = 0
            var digits = 0
            while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 {
                n = n * 10 + Int(bytes[j] - 0x30)
                j += 1
                digits += 1
            }
            if j < bytes.count, bytes[j] == UInt8(ascii: ",") {
                j += 1
                while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 { j += 1 }
            }
            guard j < bytes.count, bytes[j] == UInt8(ascii: "}") else { return nil }
            return (digits == 0 ? 0 : n, j + 1)
        }

        func isAlnum(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
        }
    }
}
