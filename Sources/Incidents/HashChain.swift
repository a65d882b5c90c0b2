import Classifier
import Foundation
import SystemSupport

/// The incident log's tamper evidence: every line ends with `"chain":"<hex>"`, where the
/// value is SHA-256 of the previous line's chain value followed by this line's bytes up to
/// (not including) the `,"chain":` suffix. The first line of a log chains from
/// `genesis`, or, after rotation, from the previous file's last chain value (it records
/// that value as `prev`), so `esafety verify` checks across rotated files.
public enum HashChain {
    static let genesis = String(repeating: "0", count: 64)
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
    public static func seal<Bytes: Collection<UInt8>>(
        bytes object: Bytes,
        previous: String,
        appendingTo out: inout [UInt8]
    ) -> String {
        // Hash `previous` + body where they will sit anyway: the previous value goes just
        // past the end of `out`, the body after it; then the previous value is cut out.
        let start = out.count
        out.append(contentsOf: previous.utf8)
        let bodyStart = out.count
        out.append(contentsOf: object)
        precondition(out.last == UInt8(ascii: "}"))
        out.removeLast()
        let chain = out.withUnsafeBytes {
            SHA256.hexString(SHA256.digest(UnsafeRawBufferPointer(rebasing: $0[start...])))
        }
        out.removeSubrange(start..<bodyStart)
        out.append(contentsOf: marker.utf8)
        out.append(contentsOf: chain.utf8)
        out.append(contentsOf: "\"}\n".utf8)
        return chain
    }

    /// Checks one line against the chain value before it (nil: the start of a chain, where the
    /// line's own `prev`, or the genesis value, is what it follows): its chain value, and
    /// whether that value is the one its bytes give.
    public static func follows(_ line: Substring, previous: String?) -> (chain: String, intact: Bool)? {
        guard let (body, chain) = split(line) else { return nil }
        let expected = previous ?? field(body, "prev") ?? genesis
        return (chain, SHA256.hex(expected, body) == chain)
    }

    /// Splits a sealed line into its body and chain value.
    /// The chain value is the line's last 66 bytes but `"}`: found by position in the bytes
    /// (every forwarded, verified and indexed line passes here).
    public static func split(_ line: Substring) -> (body: Substring, chain: String)? {
        let u = line.utf8
        let m = marker.utf8
        guard u.count >= m.count + 66 else { return nil }
        let close = u.index(u.endIndex, offsetBy: -2)
        guard u[close] == 0x22, u[u.index(after: close)] == 0x7D else { return nil }
        let chainStart = u.index(close, offsetBy: -64)
        let markerStart = u.index(chainStart, offsetBy: -m.count)
        guard u[markerStart..<chainStart].elementsEqual(m) else { return nil }
        let hex = u[chainStart..<close]
        guard hex.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) else {
            return nil
        }
        return (line[..<markerStart], String(decoding: hex, as: UTF8.self))
    }

    public struct Failure: Sendable, CustomStringConvertible, Equatable {
        public var file: String
        public var line: Int
        public var message: String
        public var description: String { "\(file):\(line): \(message)" }
    }

    /// What `verify` found: the first failure, the lines checked before it, and the last
    /// verified line (the chain's head: keep its value outside the log, and a later
    /// `verify` can show that nothing up to it was removed).
    public struct Verification: Sendable {
        public var failure: Failure?
        public var checked: Int
        public var head: (file: String, line: Int, chain: String)?
    }

    /// Verifies files in order (oldest first). Returns the first failure, or nil and the
    /// number of lines checked.
    public static func verify(files: [(name: String, text: String)]) -> (Failure?, Int) {
        let v = check(files: files)
        return (v.failure, v.checked)
    }

    /// Verifies files in order (oldest first): every line's chain value, the links between
    /// files, and that esafetyd never found the log cut short (a `truncated` event, which
    /// it writes when the file is shorter than it left it). `heads` are chain values (or
    /// prefixes of at least 12 hex digits) recorded earlier, outside the log: each must be
    /// some line's chain value, or the lines up to it were removed. A hash chain alone
    /// cannot show that lines were removed from its end; a recorded head can.
    public static func check(files: [(name: String, text: String)], heads: [String] = []) -> Verification {
        var previous: String? = nil
        var v = Verification(failure: nil, checked: 0, head: nil)
        var missing = heads.map { $0.lowercased() }
        func fail(_ name: String, _ line: Int, _ message: String) -> Verification {
            v.failure = Failure(file: name, line: line, message: message)
            return v
        }
        for (name, text) in files {
            var lineNumber = 0
            if !text.isEmpty && !text.hasSuffix("\n") {
                let n = text.split(separator: "\n", omittingEmptySubsequences: false).count
                return fail(
                    name,
                    n,
                    "the last line is incomplete: its write was cut short (a crash: the next writer removes it) or "
                        + "the file was cut"
                )
            }
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                lineNumber += 1
                guard let (body, chain) = split(line) else {
                    return fail(name, lineNumber, "no chain value: the line was changed or inserted")
                }
                let prevField = field(body, "prev")
                let expectedPrevious: String
                if let p = previous {
                    expectedPrevious = p
                    if lineNumber == 1, let pf = prevField, pf != p {
                        return fail(
                            name,
                            1,
                            "does not continue the previous file: a file or lines between them are missing"
                        )
                    }
                } else {
                    expectedPrevious = prevField ?? genesis
                }
                let computed = SHA256.hex(expectedPrevious, body)
                if computed != chain {
                    return fail(
                        name,
                        lineNumber,
                        lineNumber == 1 && previous == nil
                            ? "chain mismatch: the line was changed"
                            : "chain mismatch: this line, or the one before it, was changed, removed or inserted"
                    )
                }
                if field(body, "event") == "truncated" {
                    let had = field(body, "last_chain").map { " (its last line's chain value was \($0))" } ?? ""
                    if let saved = field(body, "recovered") {
                        return fail(
                            name,
                            lineNumber,
                            "esafetyd found the log deleted here and started a new one; it saved what it had written "
                                + "in \(saved)\(had)"
                        )
                    }
                    return fail(
                        name,
                        lineNumber,
                        "esafetyd found the log cut short here: lines it had written after the line before this one "
                            + "were removed\(had)"
                    )
                }
                if !missing.isEmpty { missing.removeAll { chain.hasPrefix($0) } }
                previous = chain
                v.checked += 1
                v.head = (name, lineNumber, chain)
            }
        }
        if let gone = missing.first {
            return fail(
                v.head?.file ?? files.last?.name ?? "log",
                (v.head?.line ?? 0) + 1,
                "no line has the recorded chain value \(gone): the lines up to it were removed, or the files that "
                    + "hold it were not checked"
            )
        }
        return v
    }

    /// Reads the files (oldest first) and checks them; throws for the first that cannot
    /// be read.
    public static func check(paths: [String], heads: [String] = []) throws(FileSystem.Error) -> Verification {
        var inputs: [(name: String, text: String)] = []
        for path in paths { inputs.append((path, try FileSystem.readText(path))) }
        return check(files: inputs, heads: heads)
    }

    /// Verifies one file on disk; the failure as text.
    static func verifyText(path: String) -> (String?, Int) {
        do {
            let v = try check(paths: [path])
            return (v.failure?.description, v.checked)
        } catch {
            return ("\(path): cannot read: \(error)", 0)
        }
    }

    /// The value of a top-level string field in a JSON line (for `prev`).
    public static func field(_ body: Substring, _ key: String) -> String? {
        guard let r = body.range(of: "\"\(key)\":\"") else { return nil }
        let rest = body[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }
}
