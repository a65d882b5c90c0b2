import Classifier

/// Reads one log line of any supported format into a `ParsedRequest`, at the byte level:
/// no `String` per line, no allocation. One parser per thread or connection (it owns a
/// small scratch arena for JSON strings with escapes).
public final class LineParser {
    public var time: LogTime
    private let arena: UnsafeMutableRawBufferPointer
    private var arenaUsed = 0

    public init(time: LogTime = LogTime()) {
        self.time = time
        arena = .allocate(byteCount: 16 * 1024, alignment: 8)
    }

    deinit { arena.deallocate() }

    /// Parses `line` (without its newline; a trailing `\r` is ignored). With `format`
    /// nil, the format is detected from the line itself.
    public func parse(_ line: UnsafeRawBufferPointer, format: LogFormat? = nil) -> ParseOutcome {
        arenaUsed = 0
        var end = line.count
        while end > 0, line[end - 1] == 0x0D || line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        let b = UnsafeRawBufferPointer(rebasing: line[0..<end])
        // A blank line (a trailing newline, a keep-alive) is nothing to count as an error.
        guard b.contains(where: { $0 != 0x20 && $0 != 0x09 }) else { return .blank }
        let env = Envelope.strip(b, time: time)
        let m = env.message
        guard m < b.count else { return .malformed("no message after the syslog header") }
        let f = format ?? detect(b, from: m, tag: env.tag)
        guard let f else { return .malformed("not a line of any known format") }
        switch f {
        case .squid: return squid(b, m)
        case .squidCommon: return common(b, m)
        case .dnsmasq: return dnsmasq(b, m, envTime: env.time)
        case .bind: return bind(b, m, envTime: env.time)
        case .unbound: return unbound(b, m, envTime: env.time)
        case .json, .adguard: return json(b, m)
        case .blocky: return blocky(b, m)
        }
    }

    // MARK: - Detection

    func detect(_ b: UnsafeRawBufferPointer, from i: Int, tag: Range<Int>?) -> LogFormat? {
        if let tag {
            let t = UnsafeRawBufferPointer(rebasing: b[tag])
            if starts(t, "dnsmasq") || starts(t, "pihole") { return .dnsmasq }
            if starts(t, "unbound") { return .unbound }
            if starts(t, "named") { return .bind }
            if starts(t, "squid") || starts(t, "(squid") {
                return isDigit(b[i]) && looksLikeEpoch(b, i) ? .squid : .squidCommon
            }
        }
        let c = b[i]
        if c == UInt8(ascii: "{") { return .json }
        if c == UInt8(ascii: "[") {
            // unbound: "[pid:thread] info: ..." or its own file "[epoch] unbound[pid:thread] ..."
            return .unbound
        }
        if startsAt(b, i, "query[") || startsAt(b, i, "forwarded ") || startsAt(b, i, "reply ")
            || startsAt(b, i, "cached ")
        {
            return .dnsmasq
        }
        if startsAt(b, i, "client ") || startsAt(b, i, "queries: ") || startsAt(b, i, "info: client ") { return .bind }
        if startsAt(b, i, "info: ") { return .unbound }
        // unbound's own file with log-time-ascii: "Nov 21 10:00:00 unbound[pid:tid] info: ..."
        if startsAt(b, i, "unbound[") { return .unbound }
        if isDigit(c) {
            if looksLikeEpoch(b, i) { return .squid }
            // Blocky: `2026-12-01 10:00:00<TAB>`.
            if i + 19 < b.count, b[i + 4] == UInt8(ascii: "-"), b[i + 19] == 0x09 { return .blocky }
            if time.bind(b, at: i) != nil { return .bind }
            // BIND with `print-time iso8601` (or iso8601-utc).
            if let (_, j) = time.rfc3339(b, at: i) {
                var k = j
                while k < b.count, b[k] == 0x20 { k += 1 }
                if startsAt(b, k, "queries: ") || startsAt(b, k, "rpz: ") || startsAt(b, k, "client ") { return .bind }
            }
        }
        // Squid common: client ident user [date] "request"
        var j = i
        var tokens = 0
        while j < b.count, tokens < 4 {
            if b[j] == UInt8(ascii: "[") { return tokens == 3 ? .squidCommon : nil }
            if b[j] == 0x20 {
                tokens += 1
                while j + 1 < b.count, b[j + 1] == 0x20 { j += 1 }
            }
            j += 1
        }
        return nil
    }

    private func looksLikeEpoch(_ b: UnsafeRawBufferPointer, _ i: Int) -> Bool {
        var j = i
        while j < b.count, isDigit(b[j]) { j += 1 }
        guard j - i >= 9, j - i <= 11, j < b.count, b[j] == UInt8(ascii: ".") else { return false }
        j += 1
        while j < b.count, isDigit(b[j]) { j += 1 }
        return j < b.count && b[j] == 0x20
    }

    // MARK: - Squid native

    /// `time elapsed client code/status bytes method URL user hierarchy/peer type`, and
    /// logformats that add columns (a port after the client, an HTTP version after the URL).
    func squid(_ b: UnsafeRawBufferPointer, _ start: Int) -> ParseOutcome {
        var tokens = Tokens(b, start)
        guard let t0 = tokens.next(), let seconds = LogTime.epochSeconds(slice(b, t0)) else {
            return .malformed("squid: no timestamp")
        }
        guard tokens.next() != nil, let client = tokens.next() else { return .malformed("squid: too few fields") }
        // The result code: the first token shaped CODE/NNN within the next few.
        var code: Range<Int>? = nil
        for _ in 0..<4 {
            guard let t = tokens.next() else { break }
            if isResultCode(b, t) {
                code = t
                break
            }
        }
        guard let code else { return .malformed("squid: no result code (like TCP_MISS/200)") }
        // Skip numbers (bytes, timings) to the method.
        var method: Range<Int>? = nil
        while let t = tokens.next() {
            if isMethod(b, t) {
                method = t
                break
            }
            guard isNumberOrDash(b, t) else { return .malformed("squid: no request method") }
        }
        guard let method, let urlToken = tokens.next() else { return .malformed("squid: no URL") }
        var user = tokens.next()
        if let u = user, isHTTPVersion(b, u) { user = tokens.next() }
        // 407 is Squid asking the browser to authenticate, before every authenticated request:
        // not a request of its own (the real one follows, with the user), never an incident.
        if contains(slice(b, code), "/407") { return .ignored(.squid) }
        let action = squidAction(b, code)
        return .request(
            request(
                b,
                seconds: seconds,
                client: client,
                user: user,
                method: method,
                url: urlToken,
                action: action,
                format: .squid
            )
        )
    }

    private func request(
        _ b: UnsafeRawBufferPointer,
        seconds: Double?,
        client: Range<Int>,
        user: Range<Int>?,
        method: Range<Int>?,
        url: Range<Int>,
        action: ProxyAction,
        format: LogFormat
    ) -> ParsedRequest {
        let urlBytes = slice(b, url)
        let parts = Host.splitURL(urlBytes)
        let host = UnsafeRawBufferPointer(rebasing: urlBytes[parts.authority])
        let isConnect = method.map { equals(slice(b, $0), "CONNECT") } ?? false
        // CONNECT host:443 has no URL; nor does a bare host.
        let fullURL: UnsafeRawBufferPointer? = (isConnect || (!parts.hasScheme && parts.path.isEmpty)) ? nil : urlBytes
        return ParsedRequest(
            time: seconds,
            client: slice(b, client),
            user: user.flatMap { dashIsNil(b, $0) },
            host: host,
            url: fullURL,
            method: method.map { slice(b, $0) },
            action: action,
            format: format
        )
    }

    private func squidAction(_ b: UnsafeRawBufferPointer, _ code: Range<Int>) -> ProxyAction {
        let c = slice(b, code)
        if contains(c, "DENIED") { return .blockedByProxy }
        if contains(c, "REDIRECT") { return .blockedByRedirector }
        if starts(c, "NONE") && contains(c, "/000") { return .unknown }
        return .allowed
    }

    // MARK: - Squid common / combined

    /// `client ident user [21/Nov/2026:10:00:00 +0000] "GET http://x/ HTTP/1.1" 200 1234 ...`
    func common(_ b: UnsafeRawBufferPointer, _ start: Int) -> ParseOutcome {
        var tokens = Tokens(b, start)
        guard let client = tokens.next(), let ident = tokens.next(), let user = tokens.next() else {
            return .malformed("squid-common: too few fields")
        }
        var i = tokens.position
        guard i < b.count, b[i] == UInt8(ascii: "[") else { return .malformed("squid-common: no [date]") }
        let dateStart = i + 1
        while i < b.count, b[i] != UInt8(ascii: "]") { i += 1 }
        guard i < b.count else { return .malformed("squid-common: unterminated [date]") }
        let seconds = time.common(b, at: dateStart) ?? commonSlashDate(b, dateStart)
        i += 1
        while i < b.count, b[i] == 0x20 { i += 1 }
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { return .malformed("squid-common: no \"request\"") }
        i += 1
        let reqStart = i
        while i < b.count, b[i] != UInt8(ascii: "\"") { i += 1 }
        var req = Tokens(b, reqStart, end: i)
        guard let method = req.next(), let url = req.next() else {
            return .malformed("squid-common: request has no URL")
        }
        let rest = UnsafeRawBufferPointer(rebasing: b[min(i + 1, b.count)...])
        // The status code after the request: 407 is an authentication challenge, not a request.
        var status = Tokens(b, min(i + 1, b.count))
        if let code = status.next(), equals(slice(b, code), "407") { return .ignored(.squidCommon) }
        let action: ProxyAction = contains(rest, "DENIED") ? .blockedByProxy : .allowed
        let who = dashIsNil(b, user) != nil ? user : ident
        return .request(
            request(
                b,
                seconds: seconds,
                client: client,
                user: who,
                method: method,
                url: url,
                action: action,
                format: .squidCommon
            )
        )
    }

    /// `05/02/2025 11:30:29` (seen in the wild): day/month/year, local time.
    private func commonSlashDate(_ b: UnsafeRawBufferPointer, _ i: Int) -> Double? {
        guard let d = LogTime.digits(b, i, 2), let mo = LogTime.digits(b, i + 3, 2),
            let y = LogTime.digits(b, i + 6, 4),
            let h = LogTime.digits(b, i + 11, 2), let m = LogTime.digits(b, i + 14, 2),
            let s = LogTime.digits(b, i + 17, 2),
            (1...12).contains(mo)
        else { return nil }
        return LogTime.epoch(y, mo, d, h, m, s) - Double(time.localOffset)
    }

    /// A DNS lookup as a request: no user, no URL, no method.
    static func lookup(
        time: Double?,
        client: UnsafeRawBufferPointer,
        host: UnsafeRawBufferPointer,
        action: ProxyAction,
        format: LogFormat
    ) -> ParsedRequest {
        ParsedRequest(
            time: time,
            client: client,
            user: nil,
            host: host,
            url: nil,
            method: nil,
            action: action,
            format: format
        )
    }

    // MARK: - dnsmasq / Pi-hole

    static let dnsmasqOther: [StaticString] = [
        // (`config` and Pi-hole's block wordings are `dnsmasqBlocker`'s, checked first.)
        "forwarded ", "reply ", "cached ", "cached-stale ", "blocked ", "/", "validation ",
        "dnssec-query", "dnssec-retry", "DHCP", "started", "compile time", "using ", "read ", "reading ", "cleared ",
        "ipset ", "nftset ", "query[type", "Pi-hole", "Maximum number", "failed ", "warning", "exiting", "time ",
        "cache size", "DNS service", "possible DNS-rebind", "not giving up", "ignoring ", "setting ", "no servers",
        "server ", "Apple iCloud", "Mozilla canary", "non-blocking",
    ]

    /// unbound's lines that are not a query or a reply (ignored, not malformed).
    static let unboundOther: [StaticString] = ["notice: ", "error: ", "warning: ", "debug: ", "operational", "fatal"]

    /// Pi-hole's lines for a name it answered from its deny lists (FTL 5 and 6 wording).
    static let piholeBlocks: [StaticString] = [
        "gravity blocked ", "regex blacklisted ", "exactly blacklisted ", "regex denied ", "exactly denied ",
        "special domain ", "denied ", "blacklisted ",
    ]

    /// Where a block line's NAME starts and who blocked it: Pi-hole's wording, or dnsmasq's
    /// `config NAME is ...` (checked for a blocking answer by `dnsmasqBlock`).
    static func dnsmasqBlocker(_ b: UnsafeRawBufferPointer, at i: Int) -> (name: Int, by: ProxyAction)? {
        if startsAt(b, i, "config ") { return (i + 7, .blockedByDnsmasq) }
        for p in piholeBlocks where startsAt(b, i, p) { return (i + p.utf8CodeUnitCount, .blockedByPihole) }
        return nil
    }

    /// `config NAME is 0.0.0.0|::|NXDOMAIN|NODATA...` (an `address=/NAME/` rule) or Pi-hole's
    /// `gravity blocked NAME is 0.0.0.0`. A `config` answer with a real address is a local
    /// name, not a block.
    func dnsmasqBlock(
        _ b: UnsafeRawBufferPointer,
        _ blocker: (name: Int, by: ProxyAction),
        client: Range<Int>,
        envTime: Double?
    ) -> ParseOutcome {
        var t = Tokens(b, blocker.name)
        guard let name = t.next(), let isWord = t.next(), equals(slice(b, isWord), "is"), let answer = t.next() else {
            return .ignored(.dnsmasq)
        }
        let a = slice(b, answer)
        let blocking =
            equals(a, "0.0.0.0") || equals(a, "::") || equals(a, "NXDOMAIN") || starts(a, "NODATA")
            || blocker.by == .blockedByPihole
        guard blocking, !equals(slice(b, name), "error") else { return .ignored(.dnsmasq) }
        return .block(
            Self.lookup(
                time: envTime,
                client: slice(b, client),
                host: slice(b, name),
                action: blocker.by,
                format: .dnsmasq
            )
        )
    }

    /// `query[A] www.example.com from 10.0.0.5`; other dnsmasq lines are recognised and ignored.
    func dnsmasq(_ b: UnsafeRawBufferPointer, _ start: Int, envTime: Double?) -> ParseOutcome {
        var start = start
        // log-queries=extra puts a query serial and the requester's ADDRESS/PORT first:
        // `2 127.0.0.1/41863 query[A] example.com from 127.0.0.1`.
        var requester = start..<start
        if start < b.count, b[start] >= 0x30, b[start] <= 0x39 {
            var t = Tokens(b, start)
            if let serial = t.next(), slice(b, serial).allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let peer = t.next(),
                let slash = slice(b, peer).firstIndex(of: UInt8(ascii: "/")), let rest = t.next()
            {
                requester = peer.lowerBound..<(peer.lowerBound + slash)
                start = rest.lowerBound
            }
        }
        if startsAt(b, start, "query[") {
            var i = start + 6
            while i < b.count, b[i] != UInt8(ascii: "]") { i += 1 }
            var tokens = Tokens(b, i + 1)
            guard let name = tokens.next(), let from = tokens.next(), equals(slice(b, from), "from"),
                let client = tokens.next()
            else { return .malformed("dnsmasq: query line without `NAME from CLIENT`") }
            return .request(
                Self.lookup(
                    time: envTime,
                    client: slice(b, client),
                    host: slice(b, name),
                    action: .unknown,
                    format: .dnsmasq
                )
            )
        }
        if startsAt(b, start, "DHCPACK(") {
            var i = start + 8
            while i < b.count, b[i] != UInt8(ascii: ")") { i += 1 }
            var tokens = Tokens(b, i + 1)
            if let ip = tokens.next(), let mac = tokens.next(), mac.count == 17, Self.isMAC(slice(b, mac)) {
                return .lease(
                    .dnsmasq,
                    client: slice(b, ip),
                    mac: slice(b, mac),
                    name: tokens.next().map { slice(b, $0) }
                )
            }
        }
        // After queries and leases, which are most lines: the answers that are blocks.
        if let blocker = Self.dnsmasqBlocker(b, at: start) {
            return dnsmasqBlock(b, blocker, client: requester, envTime: envTime)
        }
        for prefix in Self.dnsmasqOther where startsAt(b, start, prefix) { return .ignored(.dnsmasq) }
        return .malformed("dnsmasq: not a dnsmasq log message")
    }

    /// `aa:bb:cc:dd:ee:ff`.
    static func isMAC(_ m: UnsafeRawBufferPointer) -> Bool {
        guard m.count == 17 else { return false }
        for (i, c) in m.enumerated() {
            if i % 3 == 2 {
                if c != UInt8(ascii: ":") { return false }
            } else if !(c >= 0x30 && c <= 0x39 || c | 0x20 >= 0x61 && c | 0x20 <= 0x66) {
                return false
            }
        }
        return true
    }

    // MARK: - BIND

    /// `[21-Nov-2026 10:00:00.123] [queries: ][info: ]client [@0x...] IP#PORT [(name)]: [view V: ]query: NAME CLASS
    /// TYPE FLAGS (SERVER)`
    func bind(_ b: UnsafeRawBufferPointer, _ start: Int, envTime: Double?) -> ParseOutcome {
        var i = start
        var seconds = envTime
        if let (t, j) = time.bind(b, at: i) ?? time.rfc3339(b, at: i) {
            seconds = t
            i = j
            while i < b.count, b[i] == 0x20 { i += 1 }
        }
        // print-category and print-severity: `queries: info: ` or `rpz: info: `.
        if startsAt(b, i, "queries: ") {
            i += 9
        } else if startsAt(b, i, "rpz: ") {
            i += 5
        }
        if startsAt(b, i, "info: ") { i += 6 }
        guard startsAt(b, i, "client ") else {
            return startsAt(b, i, "FORMERR") || startsAt(b, i, "lame-servers") || startsAt(b, i, "resolver")
                ? .ignored(.bind)
                : .malformed("bind: no `client`")
        }
        var tokens = Tokens(b, i + 7)
        guard var t = tokens.next() else { return .malformed("bind: no client address") }
        if b[t.lowerBound] == UInt8(ascii: "@") {
            guard let n = tokens.next() else { return .malformed("bind: no client address") }
            t = n
        }
        // IP#PORT, possibly followed by ':' (9.9 form).
        var hash = t.lowerBound
        while hash < t.upperBound, b[hash] != UInt8(ascii: "#") { hash += 1 }
        guard hash < t.upperBound else { return .malformed("bind: client without #port") }
        let client = t.lowerBound..<hash
        i = t.upperBound
        // Optional " (name)" then ": "
        while i < b.count, b[i] == 0x20 { i += 1 }
        if i < b.count, b[i] == UInt8(ascii: "(") {
            while i < b.count, b[i] != UInt8(ascii: ")") { i += 1 }
            i += 1
        }
        if i < b.count, b[i] == UInt8(ascii: ":") { i += 1 }
        while i < b.count, b[i] == 0x20 { i += 1 }
        if startsAt(b, i, "view ") {
            while i < b.count, b[i] != UInt8(ascii: ":") { i += 1 }
            i += 1
            while i < b.count, b[i] == 0x20 { i += 1 }
        }
        if startsAt(b, i, "rpz ") { return bindRPZ(b, from: i + 4, client: client, time: seconds) }
        guard startsAt(b, i, "query: ") else { return .ignored(.bind) }
        var q = Tokens(b, i + 7)
        guard let name = q.next(), q.next() != nil, q.next() != nil else {
            return .malformed("bind: query without NAME CLASS TYPE")
        }
        return .request(
            Self.lookup(time: seconds, client: slice(b, client), host: slice(b, name), action: .unknown, format: .bind)
        )
    }

    /// `rpz QNAME NXDOMAIN rewrite NAME/TYPE/CLASS via RULE`: a block unless the policy lets it
    /// through (`PASSTHRU`, `DISABLED`, `TCP-Only`, `NO-OP`).
    func bindRPZ(_ b: UnsafeRawBufferPointer, from i: Int, client: Range<Int>, time: Double?) -> ParseOutcome {
        var t = Tokens(b, i)
        guard t.next() != nil, let policy = t.next(), let rewrite = t.next(), equals(slice(b, rewrite), "rewrite"),
            let target = t.next()
        else { return .ignored(.bind) }
        let p = slice(b, policy)
        if equals(p, "PASSTHRU") || equals(p, "DISABLED") || equals(p, "TCP-Only") || equals(p, "NO-OP") {
            return .ignored(.bind)
        }
        var slash = target.lowerBound
        while slash < target.upperBound, b[slash] != UInt8(ascii: "/") { slash += 1 }
        guard slash > target.lowerBound else { return .ignored(.bind) }
        return .block(
            Self.lookup(
                time: time,
                client: slice(b, client),
                host: slice(b, target.lowerBound..<slash),
                action: .blockedByRPZ,
                format: .bind
            )
        )
    }

    // MARK: - unbound

    /// `[epoch] unbound[pid:tid] info: IP NAME. TYPE CLASS` (log-queries), with
    /// ` RCODE TIME CACHED SIZE` after (log-replies); via syslog `[pid:tid] info: ...`.
    func unbound(_ b: UnsafeRawBufferPointer, _ start: Int, envTime: Double?) -> ParseOutcome {
        var i = start
        var seconds = envTime
        if i < b.count, b[i] == UInt8(ascii: "[") {
            var j = i + 1
            while j < b.count, b[j] != UInt8(ascii: "]") { j += 1 }
            let inner = UnsafeRawBufferPointer(rebasing: b[(i + 1)..<min(j, b.count)])
            if let t = LogTime.epochSeconds(inner) { seconds = t }
            i = j + 1
            while i < b.count, b[i] == 0x20 { i += 1 }
            // "unbound[pid:tid] " after an epoch, or a second "[pid:tid] ".
            if startsAt(b, i, "unbound") || (i < b.count && b[i] == UInt8(ascii: "[")) {
                while i < b.count, b[i] != 0x20 { i += 1 }
                while i < b.count, b[i] == 0x20 { i += 1 }
            }
        }
        // log-time-ascii: the time was the envelope's; "unbound[pid:tid] " starts the message.
        if startsAt(b, i, "unbound[") {
            while i < b.count, b[i] != 0x20 { i += 1 }
            while i < b.count, b[i] == 0x20 { i += 1 }
        }
        // log-tag-queryreply: `query: ` and `reply: ` in place of `info: `.
        let tagged = startsAt(b, i, "query: ") || startsAt(b, i, "reply: ")
        guard startsAt(b, i, "info: ") || tagged else {
            for p in Self.unboundOther where startsAt(b, i, p) { return .ignored(.unbound) }
            return .malformed("unbound: not an unbound log message")
        }
        if startsAt(b, i, "info: rpz: applied ") { return unboundRPZ(b, from: i + 19, time: seconds) }
        var tokens = Tokens(b, i + (tagged ? 7 : 6))
        guard let client = tokens.next(), isAddress(b, client) else { return .ignored(.unbound) }
        guard let name = tokens.next(), b[name.upperBound - 1] == UInt8(ascii: "."),
            tokens.next() != nil, tokens.next() != nil
        else { return .ignored(.unbound) }
        let r = Self.lookup(
            time: seconds,
            client: slice(b, client),
            host: slice(b, name),
            action: .unknown,
            format: .unbound
        )
        return tokens.next() != nil ? .reply(r) : .request(r)
    }

    /// `rpz: applied [ZONE] RULE rpz-nxdomain CLIENT@PORT NAME. TYPE CLASS` (`rpz-log: yes`): a
    /// block unless the action lets it through (`rpz-passthru`, `rpz-disabled`, `rpz-tcp-only`).
    func unboundRPZ(_ b: UnsafeRawBufferPointer, from i: Int, time: Double?) -> ParseOutcome {
        var t = Tokens(b, i)
        var action = t.next()
        // `[zone] ` when rpz-log-name is set; then the rule's name; then the action.
        if let a = action, b[a.lowerBound] == UInt8(ascii: "[") { action = t.next() }
        while let a = action, !starts(slice(b, a), "rpz-") { action = t.next() }
        guard let action, let peer = t.next(), let name = t.next() else { return .ignored(.unbound) }
        let a = slice(b, action)
        if equals(a, "rpz-passthru") || equals(a, "rpz-disabled") || equals(a, "rpz-tcp-only") {
            return .ignored(.unbound)
        }
        var at = peer.upperBound
        while at > peer.lowerBound, b[at - 1] != UInt8(ascii: "@") { at -= 1 }
        let client = at > peer.lowerBound ? peer.lowerBound..<(at - 1) : peer
        return .block(
            Self.lookup(
                time: time,
                client: slice(b, client),
                host: slice(b, name),
                action: .blockedByRPZ,
                format: .unbound
            )
        )
    }

    // MARK: - JSON lines

    /// `{"time":..., "client":..., "user":..., "host":..., "url":..., "method":..., "action":...}`:
    /// `time` as RFC 3339 or seconds; `host` may be left out when `url` is given.
    func json(_ b: UnsafeRawBufferPointer, _ start: Int) -> ParseOutcome {
        var p = JSONScanner(b, start)
        guard p.expect(UInt8(ascii: "{")) else { return .malformed("json: not an object") }
        var timeValue: Double? = nil
        var client: UnsafeRawBufferPointer? = nil
        var user: UnsafeRawBufferPointer? = nil
        var host: UnsafeRawBufferPointer? = nil
        var url: UnsafeRawBufferPointer? = nil
        var method: UnsafeRawBufferPointer? = nil
        var action = ProxyAction.unknown
        // AdGuard Home's query log: `T`, `QH`, `IP`, `CID`, `Result`.
        var adguard = false
        var adguardResult: UnsafeRawBufferPointer? = nil
        if p.peek() == UInt8(ascii: "}") { return .malformed("json: empty object") }
        while true {
            guard let key = p.string(arena: nil, used: &arenaUsed), p.expect(UInt8(ascii: ":")) else {
                return .malformed("json: bad key at byte \(p.i)")
            }
            let k = key
            if p.peek() == UInt8(ascii: "\"") {
                guard let v = p.string(arena: arena, used: &arenaUsed) else {
                    return .malformed("json: bad string at byte \(p.i)")
                }
                if equals(k, "time") || equals(k, "T") {
                    timeValue = time.rfc3339(v, at: 0)?.0 ?? LogTime.epochSeconds(v)
                } else if equals(k, "QH") {
                    host = v
                    adguard = true
                } else if equals(k, "IP") {
                    client = v
                } else if equals(k, "CID") {
                    // The ClientID a device presents over encrypted DNS names it (or its person).
                    user = v.isEmpty ? nil : v
                } else if equals(k, "client") {
                    client = v
                } else if equals(k, "user") {
                    user = v.isEmpty || equals(v, "-") ? nil : v
                } else if equals(k, "host") {
                    host = v
                } else if equals(k, "url") {
                    url = v
                } else if equals(k, "method") {
                    method = v
                } else if equals(k, "action") {
                    if equals(v, "blocked") || equals(v, "denied") || equals(v, "block") {
                        action = .blocked
                    } else if equals(v, "allowed") || equals(v, "allow") || equals(v, "pass") {
                        action = .allowed
                    }
                }
            } else {
                guard let v = p.scalar() else { return .malformed("json: bad value at byte \(p.i)") }
                if equals(k, "time") { timeValue = LogTime.epochSeconds(v) }
                if equals(k, "Result") { adguardResult = v }
            }
            if p.expect(UInt8(ascii: ",")) { continue }
            guard p.expect(UInt8(ascii: "}")) else { return .malformed("json: expected , or } at byte \(p.i)") }
            break
        }
        var hostBytes = host
        if hostBytes == nil, let url {
            let parts = Host.splitURL(url)
            hostBytes = UnsafeRawBufferPointer(rebasing: url[parts.authority])
        }
        guard let h = hostBytes, !h.isEmpty else { return .malformed("json: neither host nor url") }
        if adguard { action = Self.adguardAction(adguardResult) }
        let empty = UnsafeRawBufferPointer(rebasing: b[0..<0])
        return .request(
            ParsedRequest(
                time: timeValue,
                client: client ?? empty,
                user: user,
                host: h,
                url: url,
                method: method,
                action: action,
                format: adguard ? .adguard : .json
            )
        )
    }

    /// AdGuard Home's `Result`: `IsFiltered` with a `Reason` of 3 (block lists), 4 (safe
    /// browsing), 5 (parental control), 6 (invalid) or 8 (blocked services) is a block; 7 is
    /// safe search (the safe variant was answered: allowed); 9 to 11 are rewrites (answered
    /// with an address of the school's own: not known whether that blocked it).
    static func adguardAction(_ result: UnsafeRawBufferPointer?) -> ProxyAction {
        guard let result else { return .allowed }
        var p = JSONScanner(result, 0)
        guard p.expect(UInt8(ascii: "{")) else { return .unknown }
        var filtered = false
        var reason = 0
        var used = 0
        while p.peek() != UInt8(ascii: "}") {
            guard let key = p.string(arena: nil, used: &used), p.expect(UInt8(ascii: ":")) else { return .unknown }
            if p.peek() == UInt8(ascii: "\"") {
                guard p.string(arena: nil, used: &used) != nil else { return .unknown }
            } else {
                guard let v = p.scalar() else { return .unknown }
                if equals(key, "IsFiltered") { filtered = equals(v, "true") }
                if equals(key, "Reason") { reason = Int(String(decoding: v, as: UTF8.self)) ?? 0 }
            }
            guard p.expect(UInt8(ascii: ",")) else { break }
        }
        if filtered, [3, 4, 5, 6, 8].contains(reason) { return .blockedByAdguard }
        return (9...11).contains(reason) ? .unknown : .allowed
    }

    // MARK: - Blocky

    /// Blocky's CSV query log, tab-separated: `2026-12-01 10:00:00 <TAB> CLIENT_IP <TAB> CLIENT_NAMES
    /// <TAB> DURATION_MS <TAB> REASON <TAB> NAME <TAB> ANSWER <TAB> RCODE <TAB> RESPONSE_TYPE <TAB> QTYPE
    /// <TAB> INSTANCE` (local time). `RESPONSE_TYPE` `BLOCKED` is a block.
    func blocky(_ b: UnsafeRawBufferPointer, _ start: Int) -> ParseOutcome {
        var fields: [Range<Int>] = []
        fields.reserveCapacity(11)
        var i = start
        var s = start
        while i <= b.count, fields.count < 11 {
            if i == b.count || b[i] == 0x09 {
                var f = s..<i
                // Go's csv writer quotes a field that needs it; no field esafety reads does.
                if f.count >= 2, b[f.lowerBound] == UInt8(ascii: "\""), b[f.upperBound - 1] == UInt8(ascii: "\"") {
                    f = (f.lowerBound + 1)..<(f.upperBound - 1)
                }
                fields.append(f)
                s = i + 1
            }
            i += 1
        }
        guard fields.count >= 9, let (t, _) = time.rfc3339(b, at: fields[0].lowerBound) else {
            return .malformed("blocky: not `TIME<TAB>CLIENT<TAB>...<TAB>RESPONSE_TYPE`")
        }
        let name = fields[5]
        guard !name.isEmpty else { return .malformed("blocky: no question name") }
        let type = slice(b, fields[8])
        let action: ProxyAction =
            equals(type, "BLOCKED") ? .blockedByBlocky : type.isEmpty ? .unknown : .allowed
        return .request(
            Self.lookup(time: t, client: slice(b, fields[1]), host: slice(b, name), action: action, format: .blocky)
        )
    }

    // MARK: - Byte helpers

    @inline(__always) func slice(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: b[r])
    }
    @inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    func dashIsNil(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> UnsafeRawBufferPointer? {
        r.count == 1 && b[r.lowerBound] == UInt8(ascii: "-") ? nil : slice(b, r)
    }

    func isResultCode(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Bool {
        var slash = -1
        for i in r where b[i] == UInt8(ascii: "/") {
            slash = i
            break
        }
        guard slash > r.lowerBound, r.upperBound - slash == 4 else { return false }
        for i in r.lowerBound..<slash {
            let c = b[i]
            guard (c >= 0x41 && c <= 0x5A) || c == UInt8(ascii: "_") else { return false }
        }
        return isDigit(b[slash + 1]) && isDigit(b[slash + 2]) && isDigit(b[slash + 3])
    }

    func isMethod(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Bool {
        guard r.count >= 3, r.count <= 12 else { return false }
        for i in r {
            guard (b[i] >= 0x41 && b[i] <= 0x5A) || b[i] == UInt8(ascii: "_") || b[i] == UInt8(ascii: "-") else {
                return false
            }
        }
        return true
    }

    func isNumberOrDash(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Bool {
        for i in r {
            guard isDigit(b[i]) || b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: ".") else { return false }
        }
        return true
    }

    func isHTTPVersion(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Bool {
        r.count == 3 && isDigit(b[r.lowerBound]) && b[r.lowerBound + 1] == UInt8(ascii: ".")
            && isDigit(b[r.lowerBound + 2])
    }

    func isAddress(_ b: UnsafeRawBufferPointer, _ r: Range<Int>) -> Bool {
        var sawSeparator = false
        for i in r {
            let c = b[i] | 0x20
            if c == UInt8(ascii: ".") || c == UInt8(ascii: ":") {
                sawSeparator = true
                continue
            }
            guard isDigit(b[i]) || (c >= 0x61 && c <= 0x66) else { return false }
        }
        return sawSeparator
    }
}

@inline(__always)
func starts(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    guard b.count >= s.utf8CodeUnitCount else { return false }
    let p = s.utf8Start
    for k in 0..<s.utf8CodeUnitCount where b[k] != p[k] { return false }
    return true
}

@inline(__always)
func startsAt(_ b: UnsafeRawBufferPointer, _ i: Int, _ s: StaticString) -> Bool {
    guard i >= 0, i <= b.count else { return false }
    return starts(UnsafeRawBufferPointer(rebasing: b[i...]), s)
}

@inline(__always)
func equals(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    b.count == s.utf8CodeUnitCount && starts(b, s)
}

func contains(_ b: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
    let n = s.utf8CodeUnitCount
    guard b.count >= n else { return false }
    let p = s.utf8Start
    var i = 0
    while i + n <= b.count {
        if b[i] == p[0] {
            var k = 1
            while k < n, b[i + k] == p[k] { k += 1 }
            if k == n { return true }
        }
        i += 1
    }
    return false
}

/// Space-separated tokens (runs of spaces or tabs) from a position.
struct Tokens {
    let b: UnsafeRawBufferPointer
    var position: Int
    let end: Int

    init(_ b: UnsafeRawBufferPointer, _ start: Int, end: Int? = nil) {
        self.b = b
        self.position = start
        self.end = end ?? b.count
    }

    @inline(__always)
    mutating func next() -> Range<Int>? {
        var i = position
        while i < end, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
        guard i < end else {
            position = i
            return nil
        }
        let s = i
        while i < end, b[i] != 0x20, b[i] != 0x09 { i += 1 }
        position = i
        while position < end, b[position] == 0x20 || b[position] == 0x09 { position += 1 }
        return s..<i
    }
}
