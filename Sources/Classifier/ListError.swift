/// An error in the category lists, naming the place: file and, where it applies, line.
public struct ListError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case missingFolder = "missing-folder"
        case unreadableFile = "unreadable-file"
        case badMetadata = "bad-metadata"
        case badEntry = "bad-entry"
        case badPattern = "bad-pattern"
        case tooManyCategories = "too-many-categories"
    }

    public var code: Code
    public var file: String
    public var line: Int?
    public var message: String

    public init(_ code: Code, file: String, line: Int? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.line = line
        self.message = message
    }

    /// `file:line: message`, the form editors and `lint` use.
    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// A finding of `esafety lint` or of loading: an error stops a load, a warning does not.
public struct Diagnostic: Sendable, CustomStringConvertible, Equatable {
    public enum Level: String, Sendable { case error, warning }
    public enum Kind: String, Sendable {
        case invalidEntry = "invalid-entry"
        case invalidHost = "invalid-host"
        case duplicate
        case shadowed
        case badPattern = "bad-pattern"
        case noLiteral = "no-literal"
        case matchLimit = "match-limit"
        case allowlistTouchesLocked = "allowlist-touches-locked"
        case publicSuffix = "public-suffix"
        case metadata
        case unmappedCategory = "unmapped-category"
    }

    public var level: Level
    public var kind: Kind
    public var file: String
    public var line: Int?
    public var message: String

    public init(_ level: Level, _ kind: Kind, file: String, line: Int?, _ message: String) {
        self.level = level
        self.kind = kind
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return "\(place): \(level.rawValue): \(message) [\(kind.rawValue)]"
    }
}
