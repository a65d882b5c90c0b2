import Classifier
import Glibc
import LogFormats

/// Who a person is for the e-safety policy (their group), and what a match means for them:
/// whether it raises an incident, how severe, who is told, by when.
public struct Policy: Sendable, Equatable {
    /// An IPv4 or IPv6 network (IPv4 held as ::ffff:a.b.c.d).
    public struct Network: Sendable, Equatable {
        public var address: [UInt8]  // 16 bytes
        public var prefix: Int  // 0...128

        func contains(_ ip: [UInt8]) -> Bool {
            guard ip.count == 16 else { return false }
            var bits = prefix
            var i = 0
            while bits > 0 {
                let take = min(8, bits)
                let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
                if ip[i] & mask != address[i] & mask { return false }
                bits -= take
                i += 1
            }
            return true
        }
    }

    /// A time window (school hours, out of hours, after lights out) that changes severity
    /// or route for a group. Days are 1 (Monday) to 7 (Sunday); times are minutes after
    /// local midnight; `end` before `start` wraps past midnight.
    public struct TimeWindow: Sendable, Equatable {
        public var name: String
        public var days: Set<Int> = [1, 2, 3, 4, 5, 6, 7]
        public var start = 0
        public var end = 24 * 60
        public var severityShift = 0
        public var routes: [Severity: [String]] = [:]

        public init(name: String) { self.name = name }

        func contains(day: Int, minute: Int) -> Bool {
            if start <= end { return days.contains(day) && minute >= start && minute < end }
            // Wraps midnight: the evening belongs to `day`, the early morning to the day before.
            if minute >= start { return days.contains(day) }
            return minute < end && days.contains(day == 1 ? 7 : day - 1)
        }
    }

    public struct Group: Sendable, Equatable {
        public var name: String
        public var networks: [Network] = []
        /// User names: exact, or with a trailing `*` as a prefix.
        public var users: [String] = []
        /// Minimum severity (after adjustment) that raises an incident; lower ones are counted only.
        public var minimumSeverity: Severity = .low
        /// The categories that raise incidents for this group (nil: every category); others
        /// are only counted. Locked categories always raise one.
        public var categories: Set<String>?
        /// Steps to raise (positive) or lower (negative) severity for this group (e.g. +1 for KS1/KS2).
        public var severityShift = 0
        /// Roles told (e.g. ["DSL"]); by severity, with a default.
        public var routes: [Severity: [String]] = [:]
        /// Time windows, checked in order; the first that contains the request's local time applies.
        public var windows: [TimeWindow] = []

        public init(name: String) { self.name = name }

        /// Whether a match of `category` can raise an incident for this group.
        func raises(_ category: String, locked: Bool) -> Bool {
            locked || categories.map { $0.contains(category) } ?? true
        }

        func matches(client: [UInt8]?, user: String?) -> Bool {
            if let user, !users.isEmpty {
                for u in users {
                    if u.hasSuffix("*") ? user.hasPrefix(String(u.dropLast())) : user == u { return true }
                }
            }
            if let client {
                for n in networks where n.contains(client) { return true }
            }
            return false
        }
    }

    /// Checked in order; the first that matches wins.
    public var groups: [Group] = []
    public var defaultGroup = Group(name: "default")
    /// One incident per (person, registrable domain, category) per window.
    public var deduplicationWindow = 600.0
    /// This many hits of one category by one person within `repetitionWindow` raise severity a step.
    public var repetitionHits = 5
    public var repetitionWindow = 3600.0
    /// A person's other categorised requests this long before and after an incident are
    /// kept with it (`context` events); 0 keeps none.
    public var contextWindow = 3600.0
    /// The shortest of the windows above that is in use (at least a second): nothing a
    /// request leaves behind runs out sooner.
    public var shortestWindow: Double {
        var shortest = Double.infinity
        for w in [deduplicationWindow, repetitionWindow, contextWindow] where w > 0 { shortest = min(shortest, w) }
        return shortest.isFinite ? max(1, shortest) : 1
    }
    /// Seconds from the incident to its due time, per severity.
    public var deadlines: [Severity: Double] = [.critical: 3600, .high: 86400, .medium: 3 * 86400, .low: 7 * 86400]
    public var defaultRoutes: [Severity: [String]] = [
        .critical: ["DSL", "deputy DSL"], .high: ["DSL"], .medium: ["e-safety coordinator"], .low: ["IT"],
    ]

    public init() {}

    public func group(client: String, user: String?) -> Group {
        let i = groupIndex(client: client, user: user)
        return i < groups.count ? groups[i] : defaultGroup
    }

    /// The index in `groups` of the first that matches, or `groups.count` for the default.
    func groupIndex(client: String, user: String?) -> Int {
        if groups.isEmpty { return 0 }
        let ip = Self.address(client)
        return groups.firstIndex { $0.matches(client: ip, user: user) } ?? groups.count
    }

    /// An address as 16 bytes (IPv4 mapped into IPv6), or nil.
    static func address(_ s: String) -> [UInt8]? {
        // Dotted IPv4, the common case, without allocating substrings.
        var out = [UInt8](repeating: 0, count: 16)
        out[10] = 0xFF
        out[11] = 0xFF
        var part = 12
        var value = 0
        var digits = 0
        var v4 = true
        for b in s.utf8 {
            if b == UInt8(ascii: ".") {
                guard digits > 0, part < 15 else {
                    v4 = false
                    break
                }
                out[part] = UInt8(value)
                part += 1
                value = 0
                digits = 0
            } else if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") && digits < 3 {
                value = value * 10 + Int(b - UInt8(ascii: "0"))
                digits += 1
                if value > 255 {
                    v4 = false
                    break
                }
            } else {
                v4 = false
                break
            }
        }
        if v4 {
            guard part == 15, digits > 0 else { return nil }
            out[15] = UInt8(value)
            return out
        }
        var text = s
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let z = text.firstIndex(of: "%") { text = String(text[..<z]) }
        guard text.utf8.contains(UInt8(ascii: ":")) else { return nil }
        var result = [UInt8](repeating: 0, count: 16)
        let r = text.withCString { inet_pton(AF_INET6, $0, &result) }
        return r == 1 ? result : nil
    }

    /// Parses `10.1.0.0/16`, `2001:db8:1::/48`, or a single address.
    public static func network(_ s: String) -> Network? {
        let parts = s.split(separator: "/")
        guard let first = parts.first, parts.count <= 2, let ip = address(String(first)) else { return nil }
        let isV4 = !first.contains(":")
        let maximum = isV4 ? 32 : 128
        let len = parts.count > 1 ? Int(parts[1]) ?? -1 : maximum
        guard (0...maximum).contains(len) else { return nil }
        return Network(address: ip, prefix: isV4 ? len + 96 : len)
    }

    /// The first of the group's time windows that contains `time` (seconds since 1970),
    /// in local time shifted by `utcOffset` seconds.
    public func window(for group: Group, time: Double, utcOffset: Int) -> TimeWindow? {
        guard !group.windows.isEmpty else { return nil }
        let local = Int(time.rounded(.down)) + utcOffset
        let days = Int((Double(local) / 86400).rounded(.down))
        let minute = (local - days * 86400) / 60
        // 1970-01-01 was a Thursday (ISO day 4).
        let day = ((days % 7) + 7 + 3) % 7 + 1
        return group.windows.first { $0.contains(day: day, minute: minute) }
    }

    /// The severity for a match: the category's, shifted for the group and for repetition;
    /// a locked category is always critical.
    public func severity(
        category: Severity,
        locked: Bool,
        group: Group,
        repeated: Bool,
        window: TimeWindow? = nil
    ) -> Severity {
        if locked { return .critical }
        var raw = Int(category.rawValue) + group.severityShift + (window?.severityShift ?? 0) + (repeated ? 1 : 0)
        if category == .info { raw = 0 }  // counted-only categories stay info
        raw = max(0, min(4, raw))
        return Severity(rawValue: UInt8(raw))!
    }

    /// Whether a match of this category could ever raise an incident for the group: its
    /// severity as `severity(...)` gives it at the most that can shift it (repeated, in the
    /// group's window that raises most), against the group's minimum. Most matches are of
    /// counted-only (`info`) categories, which never can: they are counted and kept as
    /// context without the work of a possible incident.
    public func mayRaise(category: Severity, locked: Bool, group: Group) -> Bool {
        let raising = group.windows.max { $0.severityShift < $1.severityShift }.flatMap {
            $0.severityShift > 0 ? $0 : nil
        }
        let most = severity(category: category, locked: locked, group: group, repeated: true, window: raising)
        return locked || most >= group.minimumSeverity
    }

    public func routes(_ severity: Severity, group: Group, window: TimeWindow? = nil) -> [String] {
        window?.routes[severity] ?? group.routes[severity] ?? defaultRoutes[severity] ?? []
    }
}
