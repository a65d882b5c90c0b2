import Classifier
import Foundation
import Glibc
import SystemSupport

/// The incident log's tamper evidence: every line ends with `"chain":"<hex>"`, where the
/// value is SHA-256 of the previous line's chain value followed by this line's bytes up to
/// (not including) the `,"chain":` suffix. The first line of a log chains from
/// `genesis`, or, after rotation, from the previous file's last chain value (it records
/// that value as `prev`), so `esafety verify` checks across rotated files.
public enum HashChain {
    /// A chain value's length: SHA-256 in hex.
    public static let valueLength = 64
    static let genesis = String(repeating: "0", count: valueLength)
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
        var checker = Checker(heads: heads)
        for (name, text) in files {
            if !text.isEmpty && !text.hasSuffix("\n") {
                return checker.incomplete(name, line: text.lineSlices(keepingEmpty: true).count)
            }
            for (i, line) in text.lineSlices(keepingEmpty: true).dropLast().enumerated() {
                guard checker.check(line, file: name, number: i + 1) else { return checker.v }
            }
        }
        return checker.finish(lastFile: files.last?.name)
    }

    /// Reads the files (oldest first) and checks them, a block at a time (memory stays small
    /// whatever the log's size; a 1.44 GB log was once read whole, twice over); throws for
    /// the first that cannot be read. Each file is read to the size it had when opened: lines
    /// esafetyd appends meanwhile are the next check's.
    public static func check(paths: [String], heads: [String] = []) throws(FileSystem.Error) -> Verification {
        var checker = Checker(heads: heads)
        for path in paths {
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { throw FileSystem.Error(path: path, errno: errno) }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw FileSystem.Error(path: path, errno: errno) }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw FileSystem.Error(path: path, errno: EISDIR) }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw FileSystem.Error(
                    path: path,
                    errno: EINVAL,
                    reason: "\(FileSystem.kind(st.st_mode)), not a regular file"
                )
            }
            let size = Int64(st.st_size)
            var lastByte: UInt8 = 0x0A
            if size > 0, pread(fd, &lastByte, 1, off_t(size - 1)) != 1 {
                throw FileSystem.Error(path: path, errno: errno)
            }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var carry: [UInt8] = []
            var offset: Int64 = 0
            var number = 0
            // A file whose last line has no newline fails as a whole (as the text check does):
            // count its lines, then say so.
            let incomplete = lastByte != 0x0A
            while offset < size {
                let want = Int(min(Int64(buffer.count), size - offset))
                let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(offset)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw FileSystem.Error(path: path, errno: n < 0 ? errno : EIO, reason: n < 0 ? nil : "file shrank")
                }
                offset += Int64(n)
                var start = 0
                for i in 0..<n where buffer[i] == 0x0A {
                    number += 1
                    if !incomplete {
                        let line =
                            carry.isEmpty
                            ? String(decoding: buffer[start..<i], as: UTF8.self)
                            : String(decoding: carry + buffer[start..<i], as: UTF8.self)
                        guard checker.check(line[...], file: path, number: number) else { return checker.v }
                    }
                    carry.removeAll(keepingCapacity: true)
                    start = i + 1
                }
                if start < n { carry += buffer[start..<n] }
            }
            if incomplete { return checker.incomplete(path, line: number + 1) }
        }
        return checker.finish(lastFile: paths.last)
    }

    /// The chain followed line by line across files.
    struct Checker {
        var previous: String? = nil
        var v = Verification(failure: nil, checked: 0, head: nil)
        var missing: [String]

        init(heads: [String]) { missing = heads.map { $0.lowercased() } }

        mutating func fail(_ name: String, _ line: Int, _ message: String) -> Verification {
            v.failure = Failure(file: name, line: line, message: message)
            return v
        }

        mutating func incomplete(_ name: String, line: Int) -> Verification {
            fail(
                name,
                line,
                "the last line is incomplete: its write was cut short (a crash: the next writer removes it) or "
                    + "the file was cut"
            )
        }

        /// Checks line `number` of `name`; false when it fails (the failure is in `v`).
        mutating func check(_ line: Substring, file name: String, number lineNumber: Int) -> Bool {
            guard let (body, chain) = split(line) else {
                _ = fail(name, lineNumber, "no chain value: the line was changed or inserted")
                return false
            }
            let expectedPrevious: String
            if let p = previous {
                expectedPrevious = p
                if lineNumber == 1, let pf = field(body, "prev"), pf != p {
                    _ = fail(name, 1, "does not continue the previous file: a file or lines between them are missing")
                    return false
                }
            } else {
                expectedPrevious = field(body, "prev") ?? genesis
            }
            let computed = SHA256.hex(expectedPrevious, body)
            if computed != chain {
                _ = fail(
                    name,
                    lineNumber,
                    lineNumber == 1 && previous == nil
                        ? "chain mismatch: the line was changed"
                        : "chain mismatch: this line, or the one before it, was changed, removed or inserted"
                )
                return false
            }
            if field(body, "event") == "truncated" {
                let had = field(body, "last_chain").map { " (its last line's chain value was \($0))" } ?? ""
                if let saved = field(body, "recovered") {
                    _ = fail(
                        name,
                        lineNumber,
                        "esafetyd found the log deleted here and started a new one; it saved what it had written "
                            + "in \(saved)\(had)"
                    )
                    return false
                }
                _ = fail(
                    name,
                    lineNumber,
                    "esafetyd found the log cut short here: lines it had written after the line before this one "
                        + "were removed\(had)"
                )
                return false
            }
            if !missing.isEmpty { missing.removeAll { chain.hasPrefix($0) } }
            previous = chain
            v.checked += 1
            v.head = (name, lineNumber, chain)
            return true
        }

        mutating func finish(lastFile: String?) -> Verification {
            if let gone = missing.first {
                return fail(
                    v.head?.file ?? lastFile ?? "log",
                    (v.head?.line ?? 0) + 1,
                    "no line has the recorded chain value \(gone): the lines up to it were removed, or the files "
                        + "that hold it were not checked"
                )
            }
            return v
        }
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

    /// The value of a top-level string field in a JSON line (for `prev`): the first
    /// `"key":"` in its bytes, to the next quote.
    public static func field(_ body: Substring, _ key: String) -> String? {
        let pattern = Array("\"\(key)\":\"".utf8)
        var body = body
        return body.withUTF8 { b -> String? in
            guard let j = pattern.withUnsafeBytes({ firstIndex(of: $0, in: UnsafeRawBufferPointer(b)) }),
                let end = b[(j + pattern.count)...].firstIndex(of: 0x22)
            else { return nil }
            return String(decoding: b[(j + pattern.count)..<end], as: UTF8.self)
        }
    }

}
