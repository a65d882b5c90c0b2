/// The log formats esafetyd reads.
public enum LogFormat: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    /// Squid's native `access.log` (and variants with extra columns).
    case squid = 0
    /// Squid `common` and `combined` (Apache-style) lines.
    case squidCommon = 1
    /// dnsmasq and Pi-hole (`query[A] host from ip`).
    case dnsmasq = 2
    /// BIND 9 query log, 9.9 and 9.11+ forms.
    case bind = 3
    /// unbound `log-queries` and `log-replies`.
    case unbound = 4
    /// JSON lines with the documented minimal schema.
    case json = 5
    /// AdGuard Home's `querylog.json` (one JSON object per query, with its result).
    case adguard = 6
    /// Blocky's query log (`queryLog: type: csv`): tab-separated, one line per query.
    case blocky = 7

    public var description: String {
        switch self {
        case .squid: "squid"
        case .squidCommon: "squid-common"
        case .dnsmasq: "dnsmasq"
        case .bind: "bind"
        case .unbound: "unbound"
        case .json: "json"
        case .adguard: "adguard"
        case .blocky: "blocky"
        }
    }

    public init?(name: String) {
        guard let f = Self.allCases.first(where: { $0.description == name }) else {
            if name == "squid-combined" || name == "combined" || name == "common" {
                self = .squidCommon
                return
            }
            if name == "pihole" || name == "pi-hole" {
                self = .dnsmasq
                return
            }
            if name == "adguard-home" || name == "adguardhome" {
                self = .adguard
                return
            }
            return nil
        }
        self = f
    }

    /// Whether the format comes from a DNS resolver (a host, no URL).
    public var isDNS: Bool {
        switch self {
        case .dnsmasq, .bind, .unbound, .adguard, .blocky: true
        case .squid, .squidCommon, .json: false
        }
    }
}

/// What the proxy or resolver did with the request, when the log says: the first question a
/// DSL asks ("did the pupil see it?"). A block says who blocked it when the log shows that.
public enum ProxyAction: UInt8, Sendable, CustomStringConvertible {
    case unknown = 0
    case allowed = 1
    /// Blocked, by something the line does not name.
    case blocked = 2
    /// Squid refused it (`TCP_DENIED` with a status other than 407).
    case blockedByProxy = 3
    /// A URL rewriter (squidGuard, ufdbGuard) redirected it (`TCP_REDIRECT`).
    case blockedByRedirector = 4
    /// A resolver's response policy zone rewrote the answer (unbound, BIND).
    case blockedByRPZ = 5
    /// Pi-hole's gravity, regex or exact deny lists.
    case blockedByPihole = 6
    /// A dnsmasq `address=/name/` rule (answered 0.0.0.0, `::` or NXDOMAIN).
    case blockedByDnsmasq = 7
    /// AdGuard Home filtered it (block lists, blocked services, safe browsing, parental control).
    case blockedByAdguard = 8
    /// Blocky answered it from a deny list.
    case blockedByBlocky = 9

    /// `allowed`, `blocked` or `unknown`, as records write `action`.
    public var description: String {
        switch self {
        case .unknown: "unknown"
        case .allowed: "allowed"
        case .blocked, .blockedByProxy, .blockedByRedirector, .blockedByRPZ, .blockedByPihole, .blockedByDnsmasq,
            .blockedByAdguard, .blockedByBlocky:
            "blocked"
        }
    }

    /// Who blocked it, as records write `blocked_by`; nil when not blocked or not known.
    public var blocker: String? {
        switch self {
        case .blockedByProxy: "squid"
        case .blockedByRedirector: "redirector"
        case .blockedByRPZ: "rpz"
        case .blockedByPihole: "pihole"
        case .blockedByDnsmasq: "dnsmasq"
        case .blockedByAdguard: "adguard"
        case .blockedByBlocky: "blocky"
        case .unknown, .allowed, .blocked: nil
        }
    }
}

/// One request read from one log line. Its byte fields point into the line (or into the
/// parser's scratch, for JSON strings with escapes) and are valid until the parser's
/// next call: classify them at once, copy what an incident keeps.
public struct ParsedRequest {
    /// Seconds since 1970 (UTC); nil when the line carries no time (use the arrival time).
    public var time: Double?
    public var client: UnsafeRawBufferPointer
    /// Nil when the log has no user or writes `-`.
    public var user: UnsafeRawBufferPointer?
    public var host: UnsafeRawBufferPointer
    /// The full URL for proxy formats; nil for DNS and for CONNECT (host:port only).
    public var url: UnsafeRawBufferPointer?
    public var method: UnsafeRawBufferPointer?
    public var action: ProxyAction
    public var format: LogFormat

    public init(
        time: Double?,
        client: UnsafeRawBufferPointer,
        user: UnsafeRawBufferPointer?,
        host: UnsafeRawBufferPointer,
        url: UnsafeRawBufferPointer?,
        method: UnsafeRawBufferPointer?,
        action: ProxyAction,
        format: LogFormat
    ) {
        self.time = time
        self.client = client
        self.user = user
        self.host = host
        self.url = url
        self.method = method
        self.action = action
        self.format = format
    }
}

/// The result of reading one line.
public enum ParseOutcome {
    /// A request.
    case request(ParsedRequest)
    /// A reply record (unbound `log-replies`): a request only when the resolver does not
    /// also log the query, which the caller knows per source.
    case reply(ParsedRequest)
    /// A line of a known format that is not a request (dnsmasq `forwarded`, `reply`,
    /// `cached`, BIND `answer:`, unbound statistics...):
    /// recognised and never counted as a request.
    case ignored(LogFormat)
    /// A DHCP lease (dnsmasq `DHCPACK(iface) IP MAC [name]`): not a request, but it tells
    /// which device has an address, for device names by MAC.
    /// `name` is the host name the device gave, when the lease line has one.
    case lease(LogFormat, client: UnsafeRawBufferPointer, mac: UnsafeRawBufferPointer, name: UnsafeRawBufferPointer?)
    /// A resolver's line saying it blocked a query (unbound and BIND `rpz`, dnsmasq `config NAME is
    /// NXDOMAIN`, Pi-hole `gravity blocked`...): the verdict on the query line logged beside
    /// it when there is one (the pipeline pairs them: one request, blocked), else the request
    /// itself. `client` is empty when the line does not name it (dnsmasq without `extra`).
    case block(ParsedRequest)
    /// An empty or blank line: counted as ignored, never an error.
    case blank
    /// A line no format accepts; the reason names the problem.
    case malformed(String)
}
