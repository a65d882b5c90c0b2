/// How a rule matched.
public enum MatchKind: UInt8, Sendable, CustomStringConvertible {
    case domain = 0
    case url = 1
    case pattern = 2

    /// The kind its description names (`domain`, `url`, `pattern`), as records write it.
    public init?(name: String) {
        switch name {
        case "domain": self = .domain
        case "url": self = .url
        case "pattern": self = .pattern
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .domain: "domain"
        case .url: "url"
        case .pattern: "pattern"
        }
    }
}

/// One raw match: a category, the matcher kind and the rule's index in its table.
/// Sixteen bytes; resolved to text only when someone reads it (`CompiledLists.describe`).
@frozen
public struct Hit: Sendable, Equatable {
    public var category: UInt16
    public var kind: MatchKind
    public var severity: Severity
    /// Index into the domain or URL table's rules, or the pattern's index.
    public var rule: UInt32
    /// The table key that held the rule (domain and URL hits), so describing the hit needs
    /// no search; `UInt32.max` when unknown.
    public var key: UInt32

    public init(category: UInt16, kind: MatchKind, severity: Severity, rule: UInt32, key: UInt32 = .max) {
        self.category = category
        self.kind = kind
        self.severity = severity
        self.rule = rule
        self.key = key
    }
}

/// A match with its provenance, as people read it.
public struct MatchDetail: Sendable, Equatable {
    /// Category name.
    public var name: String
    public var severity: Severity
    public var locked: Bool
    public var kind: MatchKind
    public var file: String
    public var line: Int
    /// The rule as it is stored (normalised entry, or the pattern's text).
    public var rule: String
    /// The category's name for people (`Self-harm`), from its metadata.
    public var displayName: String?

    public init(name: String, severity: Severity, locked: Bool, kind: MatchKind, file: String, line: Int, rule: String)
    {
        (self.name, self.severity, self.locked, self.kind) = (name, severity, locked, kind)
        (self.file, self.line, self.rule) = (file, line, rule)
    }
}

/// The result of classifying one target.
public struct Verdict: Sendable, Equatable {
    public var target: String
    /// The normalised host (punycode, lower case, no port).
    public var host: String
    public var url: String?
    /// Effective matches, most severe first. The first is the primary match.
    public var categories: [MatchDetail]
    /// Matches of unlocked categories that the allowlist suppressed.
    public var suppressed: [MatchDetail]
    /// The allowlist rule that suppressed matches, if any did.
    public var allowedBy: MatchDetail?
    /// Set when the target could not be read as a host or URL.
    public var error: String?

    public var primary: MatchDetail? { categories.first }
}
