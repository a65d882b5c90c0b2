import Classifier
import SystemSupport

/// `key value` files: client address (or MAC) to device name, and client address to user
/// for DNS logs that carry no user. `#` starts a comment; errors name file and line.
public enum MappingFile {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var file: String
        public var line: Int?
        public var message: String
        public var description: String { line.map { "\(file):\($0): \(message)" } ?? "\(file): \(message)" }
    }

    public static func load(_ path: String) throws(Failure) -> [String: String] {
        let text: String
        do { text = try FileSystem.readText(path, limit: 256 << 20) } catch {
            throw Failure(file: path, line: nil, message: "cannot read: \(error)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(Failure) -> [String: String] {
        var out: [String: String] = [:]
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count >= 2 else { throw Failure(file: file, line: i + 1, message: "expected `address name`") }
            let key = fields[0].lowercased()
            if out[key] != nil { throw Failure(file: file, line: i + 1, message: "\(key) is listed twice") }
            out[key] = fields[1...].joined(separator: " ")
        }
        return out
    }
}
