import SystemSupport

/// The three kinds of list file in the squidGuard/UT1 layout.
public enum ListFileKind: String, Sendable, CaseIterable {
    case domains, urls, expressions

    /// The matcher kind that entries of this file produce.
    var matchKind: MatchKind {
        switch self {
        case .domains: .domain
        case .urls: .url
        case .expressions: .pattern
        }
    }
}

/// One line of a list file, parsed. Keys are normalised (lower case, punycode, no
/// trailing dot; URL keys without scheme, port, leading `www.` or trailing `/`).
enum ListLine {
    enum Entry {
        /// A domain key; matches it and every subdomain, or only subdomains for `*.host`.
        case domain(UnsafeBufferPointer<UInt8>, subdomainsOnly: Bool)
        /// A URL key `host/path` and the host it belongs to.
        case url(UnsafeBufferPointer<UInt8>, host: UnsafeBufferPointer<UInt8>)
        case pattern(String)
        case invalid(Diagnostic.Kind, String)
    }

    static let hostsFileNames: Set<String> = [
        "localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
        "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
        "ip6-allhosts", "0.0.0.0",
    ]

    /// Parses one line (without its `\n`) and calls `emit` for each entry on it: none for
    /// blanks and comments, several for a hosts-file line naming several hosts.
    static func parse(
        _ rawLine: UnsafeBufferPointer<UInt8>,
        kind: ListFileKind,
        scratch: inout [UInt8],
        emit: (Entry) -> Void
    ) {
        var start = 0
        var end = rawLine.count
        // UTF-8 byte order mark (first line of a file; harmless elsewhere).
        if end - start >= 3, rawLine[0] == 0xEF, rawLine[1] == 0xBB, rawLine[2] == 0xBF { start = 3 }
        while start < end, isSpace(rawLine[start]) { start += 1 }
        while end > start, isSpace(rawLine[end - 1]) { end -= 1 }
        guard start < end else { return }
        let first = rawLine[start]
        if first == UInt8(ascii: "#") { return }

        if kind == .expressions {
            emit(.pattern(String(decoding: UnsafeBufferPointer(rebasing: rawLine[start..<end]), as: UTF8.self)))
            return
        }
        // Adblock comments and section headers.
        if first == UInt8(ascii: "!") || first == UInt8(ascii: "[") { return }
        // Inline comments in hosts files: "0.0.0.0 host # note".
        var i = start
        while i < end {
            if rawLine[i] == UInt8(ascii: "#"), i > start, isSpace(rawLine[i - 1]) {
                end = i
                while end > start, isSpace(rawLine[end - 1]) { end -= 1 }
                break
            }
            i += 1
        }
        // Split into whitespace-separated tokens.
        var tokens: [Range<Int>] = []
        i = start
        while i < end {
            while i < end, isSpace(rawLine[i]) { i += 1 }
            let t = i
            while i < end, !isSpace(rawLine[i]) { i += 1 }
            if t < i { tokens.append(t..<i) }
        }
        guard let firstToken = tokens.first else { return }
        if tokens.count > 1 {
            // Hosts-file line: an address, then one or more names.
            guard isAddress(rawLine, firstToken) else {
                emit(.invalid(.invalidEntry, "unexpected text after the entry"))
                return
            }
            for token in tokens.dropFirst() {
                let name = String(decoding: UnsafeBufferPointer(rebasing: rawLine[token]), as: UTF8.self).lowercased()
                if hostsFileNames.contains(name) { continue }
                parseToken(UnsafeBufferPointer(rebasing: rawLine[token]), kind: kind, scratch: &scratch, emit: emit)
            }
            return
        }
        parseToken(UnsafeBufferPointer(rebasing: rawLine[firstToken]), kind: kind, scratch: &scratch, emit: emit)
    }

    private static func parseToken(
        _ token: UnsafeBufferPointer<UInt8>,
        kind: ListFileKind,
        scratch: inout [UInt8],
        emit: (Entry) -> Void
    ) {
        var s = 0
        var e = token.count
        var subdomainsOnly = false
        if e - s >= 2, token[0] == UInt8(ascii: "@"), token[1] == UInt8(ascii: "@") {
            emit(.invalid(.invalidEntry, "adblock exception rules (@@) belong in the allowlist"))
            return
        }
        if e - s >= 2, token[0] == UInt8(ascii: "|"), token[1] == UInt8(ascii: "|") {
            // ||host^ and ||host^$options: the host and its subdomains.
            s = 2
            var j = s
            while j < e, token[j] != UInt8(ascii: "^"), token[j] != UInt8(ascii: "$") { j += 1 }
            e = j
        } else if e - s >= 2, token[0] == UInt8(ascii: "*"), token[1] == UInt8(ascii: ".") {
            s = 2
            subdomainsOnly = true
        }
        guard s < e else {
            emit(.invalid(.invalidEntry, "empty entry"))
            return
        }
        let body = UnsafeBufferPointer(rebasing: token[s..<e])
        switch kind {
        case .domains:
            if body.contains(UInt8(ascii: "/")) || body.contains(UInt8(ascii: "*")) {
                emit(.invalid(.invalidHost, "not a host name: \(printable(body))"))
                return
            }
            scratch.removeAll(keepingCapacity: true)
            guard let hostKind = normalizeHost(UnsafeRawBufferPointer(body), appendingTo: &scratch) else {
                emit(.invalid(.invalidHost, "not a host name: \(printable(body))"))
                return
            }
            if hostKind == .name {
                let valid = scratch.withUnsafeBufferPointer { Host.isValidName($0) }
                guard valid else {
                    emit(.invalid(.invalidHost, "not a host name: \(printable(body))"))
                    return
                }
            }
            scratch.withUnsafeBufferPointer { emit(.domain($0, subdomainsOnly: subdomainsOnly && hostKind == .name)) }
        case .urls:
            let parts = Host.splitURL(UnsafeRawBufferPointer(body))
            let authority = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(body)[parts.authority])
            scratch.removeAll(keepingCapacity: true)
            guard normalizeHost(authority, appendingTo: &scratch) != nil else {
                emit(.invalid(.invalidHost, "not a URL with a host: \(printable(body))"))
                return
            }
            URLKey.stripWWW(&scratch)
            let hostCount = scratch.count
            var pathEnd = parts.path.upperBound
            while pathEnd > parts.path.lowerBound, body[pathEnd - 1] == UInt8(ascii: "/") { pathEnd -= 1 }
            for k in parts.path.lowerBound..<pathEnd { scratch.append(Host.lower(body[k])) }
            scratch.withUnsafeBufferPointer { all in
                emit(.url(all, host: UnsafeBufferPointer(rebasing: all[0..<hostCount])))
            }
        case .expressions:
            break
        }
    }

    /// Normalises a host onto the end of `out`; ASCII without allocation, Unicode via punycode.
    private static func normalizeHost(_ raw: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) -> HostKind? {
        let result: HostKind?? = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Host.maxLength) { buffer in
            switch Host.normalize(raw, into: buffer) {
            case .ok(let count, let kind):
                out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[0..<count]))
                return .some(kind)
            case .invalid: return .some(nil)
            case .needsIDNA: return nil
            }
        }
        if let result { return result }
        guard let (host, kind) = Host.normalize(String(decoding: raw, as: UTF8.self)) else { return nil }
        out.append(contentsOf: host.utf8)
        return kind
    }

    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }

    private static func isAddress(_ line: UnsafeBufferPointer<UInt8>, _ token: Range<Int>) -> Bool {
        var digitsOrDots = true
        var hasColon = false
        for i in token {
            let c = line[i]
            if c == UInt8(ascii: ":") {
                hasColon = true
                continue
            }
            if !((c >= 0x30 && c <= 0x39) || c == UInt8(ascii: ".")) { digitsOrDots = false }
        }
        return digitsOrDots || hasColon
    }

    /// Entry text safe to print: control characters escaped, long text cut.
    static func printable(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        Terminal.escape(String(decoding: bytes.prefix(200), as: UTF8.self))
    }
}

/// URL keys as squidGuard compares them.
public enum URLKey {
    /// `www.example.com` -> `example.com`, as squidGuard strips a leading `www.`.
    static func strippingWWW(_ host: String) -> String {
        host.hasPrefix("www.") && host.count > 4 ? String(host.dropFirst(4)) : host
    }

    /// Removes a leading `www.` from a normalised host held in `bytes`.
    static func stripWWW(_ bytes: inout [UInt8]) {
        if bytes.count > 4, bytes[0] == 0x77, bytes[1] == 0x77, bytes[2] == 0x77, bytes[3] == 0x2E {
            bytes.removeFirst(4)
        }
    }
}
