import Classifier
import LogFormats

/// Who a person is for the e-safety policy (their group), and what a match means for them:
/// whether it raises an incident, how severe, who is told, by when.
public struct Policy: Sendable, Equatable {
    /// An IPv4 network.
    public struct Network: Sendable, Equatable {
        public var address: UInt32
        public var prefix: Int
    }

    public struct Group: Sendable, Equatable {
        public var name: String
        public var networks: [Network] = []
        /// User names: exact, or with a trailing `*` as a prefix.
        public var users: [String] = []
        /// Minimum severity (after adjustment) that raises an incident; lower ones are counted only.
        public var minimumSeverity: Severity = .low
        /// Steps to raise (positive) or lower (negative) severity for this group (e.g. +1 for KS1/KS2).
        public var severityShift = 0
        /// Roles told (e.g. ["DSL"]); by severity, with a default.
        public var routes: [Severity: [String]] = [:]

        public init(name: String) { self.name = name }

        func matches(client: UInt32?, user: String?) -> Bool {
            if let user, !users.isEmpty {
                for u in users {
                    if u.hasSuffix("*") ? user.hasPrefix(String(u.dropLast())) : user == u { return true }
                }
            }
            if let client {
                for n in networks {
                    let mask: UInt32 = n.prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - n.prefix)
                    if client & mask == n.address & mask { return true }
                }
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
    /// Seconds from the incident to its due time, per severity.
    public var deadlines: [Severity: Double] = [.critical: 3600, .high: 86400, .medium: 3 * 86400, .low: 7 * 86400]
    public var defaultRoutes: [Severity: [String]] = [
        .critical: ["DSL", "deputy DSL"], .high: ["DSL"], .medium: ["e-safety coordinator"], .low: ["IT"],
    ]

    public init() {}

    public func group(client: String, user: String?) -> Group {
        let ip = Self.ipv4(client)
        for g in groups where g.matches(client: ip, user: user) { return g }
        return defaultGroup
    }

    static func ipv4(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".")
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard let b = UInt8(p) else { return nil }
            v = v << 8 | UInt32(b)
        }
        return v
    }

    /// Parses `10.1.0.0/16` (or a single address).
    public static func network(_ s: String) -> Network? {
        let parts = s.split(separator: "/")
        guard let first = parts.first, let ip = ipv4(String(first)) else { return nil }
        let len = parts.count > 1 ? Int(parts[1]) ?? -1 : 32
        guard (0...32).contains(len), parts.count <= 2 else { return nil }
        return Network(address: ip, prefix: len)
    }

    /// The severity for a match: the category's, shifted for the group and for repetition;
    /// a locked category is always critical.
    public func severity(category: Severity, locked: Bool, group: Group, repeated: Bool) -> Severity {
        if locked { return .critical }
        var raw = Int(category.rawValue) + group.severityShift + (repeated ? 1 : 0)
        if category == .info { raw = 0 }  // counted-only categories stay info
        raw = max(0, min(4, raw))
        return Severity(rawValue: UInt8(raw))!
    }

    public func routes(_ severity: Severity, group: Group) -> [String] {
        group.routes[severity] ?? defaultRoutes[severity] ?? []
    }
}
