/// How urgent an incident in a category is, from the school's e-safety policy.
///
/// Ordered: `critical` > `high` > `medium` > `low` > `info`.
public enum Severity: UInt8, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case info = 0
    case low = 1
    case medium = 2
    case high = 3
    case critical = 4

    public init?(name: String) {
        switch name.lowercased() {
        case "critical": self = .critical
        case "high": self = .high
        case "medium": self = .medium
        case "low": self = .low
        case "info": self = .info
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .critical: "critical"
        case .high: "high"
        case .medium: "medium"
        case .low: "low"
        case .info: "info"
        }
    }

    /// One step up, saturating at `critical`.
    public var raised: Severity { Severity(rawValue: min(rawValue + 1, 4))! }

    public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }
}
