/// A category of content (`gambling`, `iwf`, ...) and what the school's policy says about it.
///
/// Metadata lives in `<root>/<category>/category.toml` (a subset of TOML: `key = value`
/// lines with strings, booleans and `#` comments). See `docs/LISTS.md`.
public struct Category: Sendable, Equatable {
    /// Folder name after mapping (`pornography`, not UT1's `adult`).
    public var name: String
    public var displayName: String
    public var description: String
    public var severity: Severity
    /// A locked category is never suppressed by the allowlist and never lowered.
    public var locked: Bool
    /// A URL or host that must classify to this category (self-test after every reload).
    public var canary: String?
    /// True for the allowlist pseudo-category.
    public var isAllowlist: Bool

    public init(
        name: String,
        displayName: String? = nil,
        description: String = "",
        severity: Severity = .info,
        locked: Bool = false,
        canary: String? = nil,
        isAllowlist: Bool = false
    ) {
        self.name = name
        self.displayName = displayName ?? name
        self.description = description
        self.severity = severity
        self.locked = locked
        self.canary = canary
        self.isAllowlist = isAllowlist
    }

    /// The folder name of the allowlist in any list root.
    static let allowlistName = "allowlist"

    /// Parses `category.toml`. Unknown keys and bad values are errors naming file and line.
    static func parseMetadata(_ text: String, file: String, defaultName: String) throws(ListError) -> Category {
        var category = Category(name: defaultName)
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if lineNumber == 1, line.hasPrefix("\u{FEFF}") { line = line.dropFirst() }
            let trimmed = line.trimmingSpaces()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let eq = trimmed.firstIndex(of: "=") else {
                throw ListError(.badMetadata, file: file, line: lineNumber, "expected `key = value`")
            }
            let key = trimmed[..<eq].trimmingSpaces()
            let rawValue = trimmed[trimmed.index(after: eq)...].trimmingSpaces()
            let value = try TOMLValue.parse(rawValue, file: file, line: lineNumber)
            func string() throws(ListError) -> String {
                guard case .string(let s) = value else {
                    throw ListError(.badMetadata, file: file, line: lineNumber, "`\(key)` must be a quoted string")
                }
                return s
            }
            switch key {
            case "display_name": category.displayName = try string()
            case "description": category.description = try string()
            case "canary": category.canary = try string()
            case "severity":
                let s = try string()
                guard let severity = Severity(name: s) else {
                    throw ListError(
                        .badMetadata,
                        file: file,
                        line: lineNumber,
                        "unknown severity \"\(s)\" (expected critical, high, medium, low or info)"
                    )
                }
                category.severity = severity
            case "locked":
                guard case .bool(let b) = value else {
                    throw ListError(.badMetadata, file: file, line: lineNumber, "`locked` must be true or false")
                }
                category.locked = b
            default:
                throw ListError(.badMetadata, file: file, line: lineNumber, "unknown key `\(key)`")
            }
        }
        return category
    }
}
