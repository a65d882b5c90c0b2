import Foundation

/// The incident log's tamper evidence: every line ends with `"chain":"<hex>"`, where the
/// value is SHA-256 of the previous line's chain value followed by this line's bytes up to
/// (not including) the `,"chain":` suffix. The first line of a log chains from
/// `genesis`, or, after rotation, from the previous file's last chain value (it records
/// that value as `prev`), so `esafety verify` checks across rotated files.
public enum HashChain {
    public static let genesis = String(repeating: "0", count: 64)
    static let marker = ",\"chain\":\""

    /// Appends the chain field to a JSON object's text (which must end with `}`).
    public static func seal(_ object: String, previous: String) -> (line: String, chain: String) {
        var out: [UInt8] = []
        let chain = seal(object, previous: previous, appendingTo: &out)
        return (String(decoding: out.dropLast(), as: UTF8.self), chain)
    }

    /// Seals a JSON object's text (ending in `}`) and appends the line and a newline to
    /// `out`, working on the bytes; returns the new chain value.
    public static func seal(_ object: String, previous: String, appendingTo out: inout [UInt8]) -> String {
        seal(bytes: object.utf8, previous: previous, appendingTo: &out)
    }

    /// The same, for an object already written as UTF-8 bytes.
    public static func seal<Bytes: Collection<UInt8>>(bytes object: Bytes, previous: String, appendingTo out: inout [UInt8]) -> String {
        // Hash `previous` + body where they will sit anyway: the previous value goes just
        // past the end of `out`, the body after it; then the previous value is cut out.
        let start = out.count
        out.append(contentsOf: previous.utf8)
        let bodyStart = out.count
        out.append(contentsOf: object)
        precondition(out.last == UInt8(ascii: "}"))
        out.removeLast()
        let chain = out.withUnsafeBytes { SHA256.hexString(SHA256.digest(UnsafeRawBufferPointer(rebasing: $0[start...]))) }
        out.removeSubrange(start..<bodyStart)
        out.append(contentsOf: marker.utf8)
        out.append(contentsOf: chain.utf8)
        out.append(contentsOf: "\"}\n".utf8)
        return chain
    }

    /// Splits a sealed line into its body and chain value.
    public static func split(_ line: Substring) -> (body: Substring, chain: String)? {
        guard line.hasSuffix("\"}"), let r = line.range(of: marker, options: .backwards) else { return nil }
        let chain = line[r.upperBound..<line.index(line.endIndex, offsetBy: -2)]
        guard chain.count == 64, chain.allSatisfy({ $0.isHexDigit }) else { return nil }
        return (line[..<r.lowerBound], String(chain))
    }

    public struct Failure: Sendable, CustomStringConvertible, Equatable {
        public var file: String
        public var line: Int
        public var message: String
        public var description: String { "\(file):\(line): \(message)" }
    }

    /// Verifies files in order (oldest first). Returns the first failure, or nil and the
    /// number of lines checked.
    public static func verify(files: [(name: String, text: String)]) -> (Failure?, Int) {
        var previous: String? = nil
        var checked = 0
        for (name, text) in files {
            var lineNumber = 0
            if !text.isEmpty && !text.hasSuffix("\n") {
                let n = text.split(separator: "\n", omittingEmptySubsequences: false).count
                return (Failure(file: name, line: n, message: "the last line is incomplete: its write was cut short (a crash: the next writer removes it) or the file was cut"), checked)
            }
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                lineNumber += 1
                guard let (body, chain) = split(line) else {
                    return (Failure(file: name, line: lineNumber, message: "no chain value: the line was changed or inserted"), checked)
                }
                let prevField = field(body, "prev")
                let expectedPrevious: String
                if let p = previous {
                    expectedPrevious = p
                    if lineNumber == 1, let pf = prevField, pf != p {
                        return (Failure(file: name, line: 1, message: "does not continue the previous file: a file or lines between them are missing"), checked)
                    }
                } else {
                    expectedPrevious = prevField ?? genesis
                }
                let computed = SHA256.hex(expectedPrevious, body)
                if computed != chain {
                    let why = lineNumber == 1 && previous == nil ? "chain mismatch: the line was changed" :
                        "chain mismatch: this line, or the one before it, was changed, removed or inserted"
                    return (Failure(file: name, line: lineNumber, message: why), checked)
                }
                previous = chain
                checked += 1
            }
        }
        return (nil, checked)
    }

    /// Verifies one file on disk; the failure as text.
    public static func verifyText(path: String) -> (String?, Int) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return ("\(path): cannot read", 0) }
        let (f, n) = verify(files: [(path, text)])
        return (f?.description, n)
    }

    /// The value of a top-level string field in a JSON line (for `prev`).
    static func field(_ body: Substring, _ key: String) -> String? {
        guard let r = body.range(of: "\"\(key)\":\"") else { return nil }
        let rest = body[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }
}
